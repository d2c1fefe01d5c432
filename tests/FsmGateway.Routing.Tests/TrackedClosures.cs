using System.Collections.Immutable;
using FsmGateway.Configuration;
using FsmGateway.Resources;

namespace FsmGateway.Routing.Tests;

/// <summary>
/// Follows some Gateways' closures through a <see cref="GatewayClosureTracker"/> over a random sequence of snapshots and
/// checks each step against a pass over the snapshot (<see cref="GatewayClosure.Of(ConfigSnapshot, ResourceKey, string?, string)"/>):
/// the tracked closure equals it, a Gateway the tracker says the change does not reach kept the closure it had, and
/// each closure compiled alone (as its data plane compiles it) gives its Gateway what the controller's compile of the
/// whole snapshot does (so what the closure leaves out, such as another namespace's Service no grant lets a route use,
/// was not needed, and what it holds decides alike).
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

    /// <summary>How many times a Gateway's closure changed.</summary>
    public int Changed { get; private set; }

    /// <summary>Moves to <paramref name="snapshot"/> and checks every followed Gateway; <paramref name="step"/> names the step in a failure.</summary>
    /// <returns>The Gateways the tracker said the change reaches (null: any).</returns>
    public IReadOnlySet<ResourceKey>? Check(ConfigSnapshot snapshot, string step)
    {
        var reached = _tracker.Advance(snapshot);
        var controller = _options with { GatewaysHaveOwnAddresses = true };
        var whole = RouteCompiler.Compile(snapshot, controller, ListenerBindings.AssumeAllBound);
        foreach (var gateway in _closures.Keys.ToList())
        {
            var of = GatewayClosure.Of(snapshot, gateway, _options.ImplicitGatewayClassName, _options.ControllerName);
            Assert.Equal(of.ToList(), _tracker.Of(gateway).ToList());
            if (reached is not null && !reached.Contains(gateway))
            {
                LeftAlone++;
                Assert.True(_closures[gateway].SequenceEqual(of), $"{step} changed the closure of {gateway}, which the tracker said it does not reach");
            }

            Changed += _closures[gateway].SequenceEqual(of) ? 0 : 1;
            _closures[gateway] = of;
            AssertCompilesAlike(whole, gateway, of, controller with { ImplicitGatewayClassName = null });
        }

        return reached;
    }

    /// <summary>
    /// Compiles <paramref name="closure"/> alone with <paramref name="dataPlane"/>'s options (no implicit class: the
    /// closure carries the one the controller decided on) and checks that <paramref name="gateway"/> gets the listeners
    /// and status <paramref name="whole"/> (the controller's compile of everything) gives it.
    /// </summary>
    public static void AssertCompilesAlike(CompilationResult whole, ResourceKey gateway, ImmutableSortedDictionary<ResourceKey, Resource> closure, CompilerOptions dataPlane)
    {
        var alone = RouteCompiler.Compile(ConfigSnapshot.From(closure.Values), dataPlane, ListenerBindings.AssumeAllBound);
        Assert.Equal(
            whole.Table.Listeners.Where(l => l.Gateway == gateway).ToList(),
            alone.Table.Listeners.Where(l => l.Gateway == gateway).ToList());
        Assert.Equal(whole.Statuses.Gateways.GetValueOrDefault(gateway), alone.Statuses.Gateways.GetValueOrDefault(gateway));
    }
}
