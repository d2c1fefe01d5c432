using System.Diagnostics.CodeAnalysis;
using System.Reactive.Linq;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Status;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace FsmGateway;

/// <summary>Config sources and status sinks for <see cref="IFsmGatewayBuilder"/>.</summary>
public static class ConfigSourceBuilderExtensions
{
    /// <summary>Adds a config source. Every source must sync once before the gateway serves.</summary>
    /// <param name="builder">The gateway builder.</param>
    /// <param name="source">The source; its name must be unique.</param>
    /// <returns>The same builder.</returns>
    public static IFsmGatewayBuilder AddConfigSource(this IFsmGatewayBuilder builder, IConfigSource source)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(source);
        builder.Services.AddSingleton(source);
        return builder;
    }

    /// <summary>Adds a config source created from the application's services.</summary>
    /// <typeparam name="TSource">The source type.</typeparam>
    /// <param name="builder">The gateway builder.</param>
    /// <returns>The same builder.</returns>
    public static IFsmGatewayBuilder AddConfigSource<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TSource>(this IFsmGatewayBuilder builder)
        where TSource : class, IConfigSource
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddSingleton<TSource>();
        builder.Services.AddSingleton<IConfigSource>(static sp => sp.GetRequiredService<TSource>());
        return builder;
    }

    /// <summary>
    /// Serves objects given in code. Resolve <see cref="InMemoryConfigSource"/> and call
    /// <see cref="InMemoryConfigSource.Update"/> to replace them at run time; the running gateway reconfigures.
    /// </summary>
    /// <param name="builder">The gateway builder.</param>
    /// <param name="resources">The objects to serve at first (see <see cref="ResourceSetBuilder"/>).</param>
    /// <returns>The same builder.</returns>
    public static IFsmGatewayBuilder LoadFromMemory(this IFsmGatewayBuilder builder, IEnumerable<Resource> resources)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(resources);
        var source = new InMemoryConfigSource("memory", resources);
        builder.Services.AddSingleton(source);
        builder.Services.AddSingleton<IConfigSource>(source);
        return builder;
    }

    /// <summary>Serves whatever set of objects <paramref name="resourceSets"/> pushed last; the gateway waits for the first.</summary>
    /// <param name="builder">The gateway builder.</param>
    /// <param name="resourceSets">Complete sets of objects, each replacing the one before.</param>
    /// <param name="name">The source's name (unique among sources).</param>
    /// <returns>The same builder.</returns>
    public static IFsmGatewayBuilder LoadFromObservable(this IFsmGatewayBuilder builder, IObservable<IEnumerable<Resource>> resourceSets, string name = "observable")
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(resourceSets);
        builder.Services.AddSingleton<IConfigSource>(new ObservableConfigSource(name, resourceSets));
        return builder;
    }

    /// <summary>Adds a sink that receives every status set the gateway computes.</summary>
    /// <typeparam name="TSink">The sink type.</typeparam>
    /// <param name="builder">The gateway builder.</param>
    /// <returns>The same builder.</returns>
    public static IFsmGatewayBuilder AddStatusSink<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TSink>(this IFsmGatewayBuilder builder)
        where TSink : class, IStatusSink
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IStatusSink, TSink>());
        return builder;
    }

    private sealed class ObservableConfigSource(string name, IObservable<IEnumerable<Resource>> sets) : IConfigSource
    {
        public string Name { get; } = name;

        public IObservable<ConfigEvent> Events { get; } =
            sets.Select(set => (ConfigEvent)new ConfigEvent.SourceReset(name, [.. set]));
    }
}
