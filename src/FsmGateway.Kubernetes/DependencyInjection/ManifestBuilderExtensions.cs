using FsmGateway.Configuration;
using FsmGateway.Kubernetes.Manifests;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FsmGateway.Kubernetes;

/// <summary>Manifest files as config for <see cref="IFsmGatewayBuilder"/>.</summary>
public static class ManifestBuilderExtensions
{
    /// <summary>Serves the manifests at <paramref name="paths"/> (files or folders), hot-reloading them as they change.</summary>
    /// <param name="builder">The gateway builder.</param>
    /// <param name="paths">Files or folders of <c>.yaml</c>/<c>.yml</c>/<c>.json</c> manifests.</param>
    /// <returns>The same builder.</returns>
    public static IFsmGatewayBuilder LoadFromManifests(this IFsmGatewayBuilder builder, params string[] paths) =>
        builder.LoadFromManifests((IEnumerable<string>)paths);

    /// <summary>Serves the manifests at <paramref name="paths"/>, placing objects that name no namespace in <paramref name="defaultNamespace"/>.</summary>
    /// <param name="builder">The gateway builder.</param>
    /// <param name="paths">Files or folders of manifests.</param>
    /// <param name="defaultNamespace">The namespace for objects that name none, as <c>kubectl apply -n</c>.</param>
    /// <returns>The same builder.</returns>
    public static IFsmGatewayBuilder LoadFromManifests(this IFsmGatewayBuilder builder, IEnumerable<string> paths, string defaultNamespace = "default") =>
        builder.LoadFromManifests(paths, defaultNamespace, static _ => { });

    /// <summary>
    /// Serves the manifests at <paramref name="paths"/>, watched and read as <paramref name="configure"/> sets
    /// (size cap, settle and maximum delay, read timeout); the options are validated when the host starts.
    /// </summary>
    /// <param name="builder">The gateway builder.</param>
    /// <param name="paths">Files or folders of manifests.</param>
    /// <param name="defaultNamespace">The namespace for objects that name none, as <c>kubectl apply -n</c>.</param>
    /// <param name="configure">Sets how the files are watched and read.</param>
    /// <returns>The same builder.</returns>
    public static IFsmGatewayBuilder LoadFromManifests(this IFsmGatewayBuilder builder, IEnumerable<string> paths, string defaultNamespace, Action<ManifestFileSourceOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(defaultNamespace);
        ArgumentNullException.ThrowIfNull(configure);
        string[] files = [.. paths];
        if (files.Length == 0)
        {
            throw new ArgumentException("Give at least one manifest file or folder.", nameof(paths));
        }

        builder.Services.AddOptions<ManifestFileSourceOptions>().Configure(configure).ValidateOnStart();
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ManifestFileSourceOptions>, ManifestFileSourceOptionsValidator>());
        builder.Services.AddSingleton<IConfigSource>(sp =>
            new ManifestFileSource(
                files,
                sp.GetRequiredService<IOptions<ManifestFileSourceOptions>>().Value,
                defaultNamespace,
                logger: sp.GetService<ILogger<ManifestFileSource>>()));
        return builder;
    }
}
