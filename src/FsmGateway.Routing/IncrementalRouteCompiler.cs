using System.Collections.Immutable;
using FsmGateway.Configuration;
using FsmGateway.Resources;
using FsmGateway.Routing.Compilation;
using FsmGateway.Status;

namespace FsmGateway.Routing;

/// <summary>
/// <see cref="RouteCompiler"/> with a memory of its last compilation, for a pipeline that compiles one snapshot after
/// another. When the only objects that changed since the last snapshot (as <see cref="ConfigSnapshot.TryGetChangedKeys"/>
/// tells) are EndpointSlices, and the options and listener bindings are the same, only the listeners whose backends
/// reach those Services are recomputed: their endpoints, and the "no ready endpoints" notes on their routes. Nothing
/// else in a compilation reads EndpointSlices, so statuses (route status across Gateways included) carry over as they
/// are. Anything else compiles in full. The result is always equal to <see cref="RouteCompiler.Compile"/>'s for the
/// same input (a property test checks it over random event sequences). Pure like the compiler (no I/O, no clock);
/// not thread-safe: one pipeline calls it.
/// </summary>
public sealed class IncrementalRouteCompiler
{
    private ConfigSnapshot? _snapshot;
    private CompilerOptions? _options;
    private ListenerBindings? _bindings;
    private ProvisionedDataPlanes? _dataPlanes;
    private CompilationResult? _result;

    /// <summary>The table's listener entries by each Service their backends name; rebuilt after every full compile.</summary>
    private Dictionary<(string Namespace, string Name), List<int>>? _entriesByService;

    /// <summary>The EndpointSlices of each Service, kept up to date from the changed keys; built on first use.</summary>
    private Dictionary<(string Namespace, string Name), Dictionary<ResourceKey, EndpointSlice>>? _slicesByService;

    /// <summary>Whether the last <see cref="Compile"/> recomputed only what changed.</summary>
    public bool LastWasIncremental { get; private set; }

    /// <summary>Compiles <paramref name="snapshot"/>, reusing the previous compilation where only EndpointSlices changed.</summary>
    /// <param name="snapshot">Every object the gateway knows.</param>
    /// <param name="options">Which controller we are; <see cref="CompilerOptions.Default"/> when null.</param>
    /// <param name="bindings">What the transport bound; <see cref="ListenerBindings.Pending"/> when null.</param>
    /// <param name="dataPlanes">What the controller provisioned for each Gateway; null when it provisions nothing.</param>
    /// <returns>The same result as <see cref="RouteCompiler.Compile"/>.</returns>
    public CompilationResult Compile(ConfigSnapshot snapshot, CompilerOptions? options = null, ListenerBindings? bindings = null, ProvisionedDataPlanes? dataPlanes = null)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        options ??= CompilerOptions.Default;
        bindings ??= ListenerBindings.Pending;
        LastWasIncremental = false;
        if (_result is { } previous && _snapshot is { } before && options.Equals(_options) && bindings.Equals(_bindings) && Equals(dataPlanes, _dataPlanes)
            && snapshot.TryGetChangedKeys(before, out var changed) && changed.All(static k => k.Kind == ResourceKind.EndpointSlice))
        {
            _result = EndpointsChanged(previous, before, snapshot, changed);
            _snapshot = snapshot;
            LastWasIncremental = true;
            return _result;
        }

        _result = RouteCompiler.Compile(snapshot, options, bindings, dataPlanes);
        _snapshot = snapshot;
        _options = options;
        _bindings = bindings;
        _dataPlanes = dataPlanes;
        _entriesByService = null;
        _slicesByService = null;
        return _result;
    }

    private CompilationResult EndpointsChanged(CompilationResult previous, ConfigSnapshot before, ConfigSnapshot after, IReadOnlyCollection<ResourceKey> changed)
    {
        var slices = _slicesByService ??= IndexSlices(before);
        var services = new HashSet<(string Namespace, string Name)>();
        foreach (var key in changed)
        {
            if (before.Resources.GetValueOrDefault(key) is EndpointSlice { ServiceName: { } oldService })
            {
                services.Add((key.Namespace, oldService));
                Remove(slices, (key.Namespace, oldService), key);
            }

            if (after.Resources.GetValueOrDefault(key) is EndpointSlice { ServiceName: { } newService } slice)
            {
                services.Add((key.Namespace, newService));
                if (!slices.TryGetValue((key.Namespace, newService), out var held))
                {
                    slices[(key.Namespace, newService)] = held = [];
                }

                held[key] = slice;
            }
        }

        var entries = _entriesByService ??= IndexEntries(previous.Table);
        var listeners = previous.Table.Listeners.Items;
        ImmutableArray<ListenerRoute>.Builder? table = null;
        List<Diagnostic>? notes = null;
        foreach (var service in services)
        {
            if (!entries.TryGetValue(service, out var indexes)
                || after.Resources.GetValueOrDefault(new ResourceKey(ResourceKind.Service, service.Namespace, service.Name)) is not Service resolved)
            {
                continue;
            }

            var serviceSlices = slices.TryGetValue(service, out var held) ? held.Values.ToList() : [];
            foreach (var index in indexes)
            {
                table ??= listeners.ToBuilder();
                var entry = table[index];
                var backends = entry.Backends.Items.ToBuilder();
                for (var i = 0; i < backends.Count; i++)
                {
                    var backend = backends[i];
                    if (backend.Namespace != service.Namespace || backend.Name != service.Name || backend.Problem is not null)
                    {
                        continue;
                    }

                    // A backend without a problem names a port the Service has (the resolver checked it).
                    var port = resolved.Ports.First(p => p.Port == backend.Port);
                    backends[i] = backend with { Endpoints = BackendResolver.ReadyEndpoints(serviceSlices, port) };
                }

                table[index] = entry with { Backends = backends.ToImmutable() };
            }
        }

        if (table is null)
        {
            return previous with { Revision = after.Revision };
        }

        // The "no ready endpoints" notes of the affected Services, as the table builder writes them.
        var prefixes = services.Select(static s => TableBuilder.NoReadyEndpointsPrefix(s.Namespace, s.Name)).ToList();
        foreach (var service in services)
        {
            if (!entries.TryGetValue(service, out var indexes))
            {
                continue;
            }

            foreach (var index in indexes)
            {
                var entry = table[index];
                foreach (var backend in entry.Backends)
                {
                    if (backend.Namespace == service.Namespace && backend.Name == service.Name && TableBuilder.HasNoReadyEndpoints(backend))
                    {
                        (notes ??= []).Add(new Diagnostic(DiagnosticSeverity.Info, entry.Route, TableBuilder.NoReadyEndpoints(backend)));
                    }
                }
            }
        }

        var kept = previous.Diagnostics.Where(d => !IsNoReadyEndpointsNote(d, prefixes)).ToList();
        var diagnostics = kept.Count == previous.Diagnostics.Length && notes is null
            ? previous.Diagnostics
            : CompilationContext.Sorted(notes is null ? kept : kept.Concat(notes));
        return previous with
        {
            Revision = after.Revision,
            Table = new RoutingTable(table.ToImmutable()),
            Diagnostics = diagnostics.SequenceEqual(previous.Diagnostics) ? previous.Diagnostics : diagnostics,
        };
    }

    private static bool IsNoReadyEndpointsNote(Diagnostic diagnostic, List<string> prefixes) =>
        diagnostic.Severity == DiagnosticSeverity.Info
        && diagnostic.Message.Contains(" has no ready endpoints; ", StringComparison.Ordinal)
        && prefixes.Exists(p => diagnostic.Message.StartsWith(p, StringComparison.Ordinal));

    private static void Remove(Dictionary<(string, string), Dictionary<ResourceKey, EndpointSlice>> slices, (string, string) service, ResourceKey key)
    {
        if (slices.TryGetValue(service, out var held) && held.Remove(key) && held.Count == 0)
        {
            slices.Remove(service);
        }
    }

    private static Dictionary<(string Namespace, string Name), Dictionary<ResourceKey, EndpointSlice>> IndexSlices(ConfigSnapshot snapshot)
    {
        var index = new Dictionary<(string, string), Dictionary<ResourceKey, EndpointSlice>>();
        foreach (var slice in snapshot.OfType<EndpointSlice>())
        {
            if (slice.ServiceName is { } service)
            {
                if (!index.TryGetValue((slice.Metadata.Namespace, service), out var held))
                {
                    index[(slice.Metadata.Namespace, service)] = held = [];
                }

                held[slice.Key] = slice;
            }
        }

        return index;
    }

    private static Dictionary<(string Namespace, string Name), List<int>> IndexEntries(RoutingTable table)
    {
        var index = new Dictionary<(string, string), List<int>>();
        for (var i = 0; i < table.Listeners.Length; i++)
        {
            foreach (var backend in table.Listeners[i].Backends)
            {
                if (!index.TryGetValue((backend.Namespace, backend.Name), out var entries))
                {
                    index[(backend.Namespace, backend.Name)] = entries = [];
                }

                if (entries.Count == 0 || entries[^1] != i)
                {
                    entries.Add(i);
                }
            }
        }

        return index;
    }
}
