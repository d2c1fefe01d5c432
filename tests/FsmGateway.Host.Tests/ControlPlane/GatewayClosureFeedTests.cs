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
    public void AGrantDeletedTakesAnotherNamespacesServiceOutOfTheStream_AndAddedBringsItBack_WakingNoOtherStream()
    {
        // a's second route uses shared/s, which shared's grant lets TCPRoutes from a use.
        using var feed = new GatewayClosureFeed(_applied, Options.Create(new FsmGatewayOptions()), Options.Create(new GatewayControllerOptions()), NullLogger<GatewayClosureFeed>.Instance);
        var service = new Service(new ObjectMeta("shared", "s"), [new ServicePort("tcp", 80, "TCP")]);
        var slice = Slice("shared", "10.2.0.1");
        var grant = new ReferenceGrant(new ObjectMeta("shared", "grant"), [new ReferenceGrantFrom(GatewayApi.Group, "TCPRoute", "a")], [new ReferenceGrantTo(string.Empty, "Service", null)]);
        var route = new TcpRoute(new ObjectMeta("a", "r2"), [new ParentReference(null, null, null, "gw", null, null)], [new TcpRouteRule([new BackendReference(null, null, "shared", "s", 80, 1)])]);
        var snapshot = Apply(ConfigSnapshot.From([.. Cluster(), service, slice, grant, route]));
        using var a = feed.Subscribe(GatewayA);
        using var b = feed.Subscribe(GatewayB);
        Assert.Contains(Next(a), pair => pair.Key == slice.Key);
        Next(b);

        // Revoked mid-stream: a's stream gets the closure without the Service, its slice and the grant (the stream
        // sends those as deletes); b's does not wake.
        snapshot = Apply(snapshot.Apply(new ConfigEvent.Deleted("default", grant.Key)));
        var revoked = Next(a);
        Assert.Equal(Expected(snapshot, GatewayA), revoked);
        Assert.DoesNotContain(revoked, pair => pair.Key == service.Key || pair.Key == slice.Key || pair.Key == grant.Key);
        Assert.False(b.Updates.TryRead(out _));

        // Granted again: they come back, to a's stream only.
        snapshot = Apply(snapshot.Apply(new ConfigEvent.Upserted("default", grant)));
        var granted = Next(a);
        Assert.Equal(Expected(snapshot, GatewayA), granted);
        Assert.Contains(granted, pair => pair.Key == service.Key);
        Assert.Contains(granted, pair => pair.Key == slice.Key);
        Assert.Contains(granted, pair => pair.Key == grant.Key);
        Assert.False(b.Updates.TryRead(out _));
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
