using FsmGateway.Configuration;
using FsmGateway.Host.ControlPlane;
using FsmGateway.Resources;
using FsmGateway.Routing;
using Microsoft.Extensions.Logging.Abstractions;
using FsmGateway.Transport.Hosting;
using Microsoft.Extensions.Options;
using System.Reactive.Subjects;

namespace FsmGateway.Host.Tests.ControlPlane;

/// <summary>
/// The controller's streams are woken by what reaches their Gateway only: an applied change wakes the streams of the
/// Gateways whose closure it changed, with that closure, and no other stream.
/// </summary>
public sealed class GatewayClosureFeedTests
{
    private static readonly ResourceKey GatewayA = new(ResourceKind.Gateway, "a", "gw");
    private static readonly ResourceKey GatewayB = new(ResourceKind.Gateway, "b", "gw");
    private readonly Subject<ConfigSnapshot> _applied = new();

    [Fact]
    public void AChangeWakesOnlyTheStreamsOfTheGatewaysItReaches_WithTheirNewClosure()
    {
        using var feed = new GatewayClosureFeed(_applied, Options.Create(new FsmGatewayOptions()), Options.Create(new GatewayControllerOptions()), NullLogger<GatewayClosureFeed>.Instance);
        var snapshot = Apply(ConfigSnapshot.From(Cluster()));
        using var a = feed.Subscribe(GatewayA);
        using var b1 = feed.Subscribe(GatewayB);
        using var b2 = feed.Subscribe(GatewayB);
        Assert.Equal(Expected(snapshot, GatewayA), Next(a));
        Assert.Equal(Expected(snapshot, GatewayB), Next(b1));
        Assert.Equal(Expected(snapshot, GatewayB), Next(b2));

        // An endpoint of b's Service moves: both streams of b wake with the new slice; a's does not wake.
        snapshot = Apply(snapshot.Apply(new ConfigEvent.Upserted("default", Slice("b", "10.0.0.99"))));
        Assert.Equal(Expected(snapshot, GatewayB), Next(b1));
        Assert.Equal(Expected(snapshot, GatewayB), Next(b2));
        Assert.False(a.Updates.TryRead(out _));

        // A change nobody's closure holds (a Service no route uses) wakes nothing.
        Apply(snapshot.Apply(new ConfigEvent.Upserted("default", new Service(new ObjectMeta("a", "unused"), [new ServicePort("tcp", 80, "TCP")]))));
        Assert.False(a.Updates.TryRead(out _));
        Assert.False(b1.Updates.TryRead(out _));

        // A subscriber that stopped following gets nothing more, and the others still do.
        b2.Dispose();
        snapshot = Apply(snapshot.Apply(new ConfigEvent.Deleted("default", new ResourceKey(ResourceKind.EndpointSlice, "b", "s-0"))));
        Assert.Equal(Expected(snapshot, GatewayB), Next(b1));
        Assert.False(b2.Updates.TryRead(out _));
        Assert.True(b2.Updates.Completion.IsCompleted);
    }

    [Fact]
    public void AStreamSubscribingBeforeAnyConfigGetsTheFirstAppliedOne()
    {
        using var feed = new GatewayClosureFeed(_applied, Options.Create(new FsmGatewayOptions()), Options.Create(new GatewayControllerOptions()), NullLogger<GatewayClosureFeed>.Instance);
        using var a = feed.Subscribe(GatewayA);
        Assert.False(a.Updates.TryRead(out _));

        var snapshot = Apply(ConfigSnapshot.From(Cluster()));
        Assert.Equal(Expected(snapshot, GatewayA), Next(a));
    }

    private static List<KeyValuePair<ResourceKey, Resource>> Expected(ConfigSnapshot snapshot, ResourceKey gateway) =>
        [.. GatewayClosure.Of(snapshot, gateway, new FsmGatewayOptions().ImplicitGatewayClassName, new GatewayControllerOptions().ControllerName)];

    private static List<KeyValuePair<ResourceKey, Resource>> Next(GatewayClosureFeed.Subscription subscription)
    {
        Assert.True(subscription.Updates.TryRead(out var update), "the stream was woken");
        Assert.False(subscription.Updates.TryRead(out _));
        return [.. update.Closure];
    }

    private static IEnumerable<Resource> Cluster()
    {
        yield return new GatewayClass(new ObjectMeta(string.Empty, "fsm"), GatewayApi.DefaultControllerName);
        foreach (var ns in new[] { "a", "b" })
        {
            yield return new Resources.Gateway(new ObjectMeta(ns, "gw"), "fsm", [new Listener("l0", 9000, "TCP")]);
            yield return new Service(new ObjectMeta(ns, "s"), [new ServicePort("tcp", 80, "TCP")]);
            yield return Slice(ns, $"10.{ns[0] - 'a'}.0.1");
            yield return new TcpRoute(new ObjectMeta(ns, "r"), [new ParentReference(null, null, null, "gw", null, null)], [new TcpRouteRule([new BackendReference(null, null, null, "s", 80, 1)])]);
        }
    }

    private static EndpointSlice Slice(string ns, string address) =>
        new(new ObjectMeta(ns, "s-0"), "s", "IPv4", [new EndpointPort("tcp", 8080, "TCP")], [new Endpoint([address], true)]);

    private ConfigSnapshot Apply(ConfigSnapshot snapshot)
    {
        _applied.OnNext(snapshot);
        return snapshot;
    }
}
