using System.Collections.Immutable;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using FsmGateway.Resources;

namespace FsmGateway.Configuration;

/// <summary>
/// A config source fed from code: set the whole set of objects with <see cref="Update"/>, and every subscriber
/// receives it as a <see cref="ConfigEvent.SourceReset"/>. A new subscriber first receives the current set.
/// </summary>
public sealed class InMemoryConfigSource : IConfigSource, IDisposable
{
    private readonly BehaviorSubject<ImmutableArray<Resource>> _contents;

    /// <summary>Creates a source holding <paramref name="resources"/>.</summary>
    /// <param name="name">The source's name.</param>
    /// <param name="resources">The objects it holds at first.</param>
    public InMemoryConfigSource(string name, IEnumerable<Resource> resources)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(resources);
        Name = name;
        _contents = new BehaviorSubject<ImmutableArray<Resource>>([.. resources]);
        Events = _contents.Select(contents => (ConfigEvent)new ConfigEvent.SourceReset(Name, contents));
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public IObservable<ConfigEvent> Events { get; }

    /// <summary>The objects the source holds now.</summary>
    public ImmutableArray<Resource> Current => _contents.Value;

    /// <summary>Replaces every object the source holds.</summary>
    /// <param name="resources">The new set of objects.</param>
    public void Update(IEnumerable<Resource> resources)
    {
        ArgumentNullException.ThrowIfNull(resources);
        _contents.OnNext([.. resources]);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _contents.OnCompleted();
        _contents.Dispose();
    }
}
