using System.Collections.Immutable;
using FsmGateway.Configuration;
using FsmGateway.Resources;

namespace FsmGateway.Routing.Tests;

/// <summary>
/// Follows some Gateways' closures through a <see cref="GatewayClosureTracker"/> over a random sequence of snapshots and
/// checks each step against a pass over the snapshot (<see cref="GatewayClosure.Of(ConfigSnapshot, ResourceKey, string?, string)"/>):
/// the tracked closure equals it, and a Gateway the tracker says the change does not reach kept the closure it had.
/// </summary>
internal sealed class TrackedClosures
{
    private readonly CompilerOptions _options;
    private readonly GatewayClosureTracker _tracker;
    private readonly Dictionary<ResourceKey, ImmutableSortedDictionary<ResourceKey, Resource>> _closures;

    public TrackedClosures(ConfigSnapshot snapshot, IEnumerable<ResourceKey> gateways, CompilerOptions options)
    {
        _options = options;
        _tracker = new GatewayClosureTracker(options.ImplicitGatewayClassName, options.ControllerName);
        Assert.Null(_tracker.Advance(snapshot));
        _closures = gateways.ToDictionary(static g => g, _tracker.Of);
    }

    /// <summary>How many times a Gateway's closure was left alone because the change did not reach it.</summary>
    public int LeftAlone { get; private set; }

    /// <summary>Moves to <paramref name="snapshot"/> and checks every followed Gateway; <paramref name="step"/> names the step in a failure.</summary>
    public void Check(ConfigSnapshot snapshot, string step)
    {
        var reached = _tracker.Advance(snapshot);
        foreach (var gateway in _closures.Keys.ToList())
        {
            var of = GatewayClosure.Of(snapshot, gateway, _options.ImplicitGatewayClassName, _options.ControllerName);
            Assert.Equal(of.ToList(), _tracker.Of(gateway).ToList());
            if (reached is not null && !reached.Contains(gateway))
            {
                LeftAlone++;
                Assert.True(_closures[gateway].SequenceEqual(of), $"{step} changed the closure of {gateway}, which the tracker said it does not reach");
            }

            _closures[gateway] = of;
        }
    }
}
