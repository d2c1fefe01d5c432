using System.Text.Json.Nodes;
using FsmGateway.Configuration;
using FsmGateway.Kubernetes.Api;
using FsmGateway.Kubernetes.Controller;
using FsmGateway.Kubernetes.Mapping;
using FsmGateway.Resources;
using FsmGateway.Routing;
using FsmGateway.Status;
using FsmGateway.Testing.Kubernetes;
using k8s;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace FsmGateway.Kubernetes.Tests.Controller;

/// <summary>Status writes against the fake API server: what is written, and when it is not.</summary>
public sealed class KubernetesStatusWriterTests : IAsyncLifetime
{
    private const string Ours = GatewayApi.DefaultControllerName;
    private const string GatewayV1 = "gateway.networking.k8s.io/v1";

    private static readonly string Manifest = """
        apiVersion: gateway.networking.k8s.io/v1
        kind: GatewayClass
        metadata: { name: fsm }
        spec: { controllerName: flomesh.io/gateway-controller }
        ---
        """ + "\n" + File.ReadAllText(RepoPaths.Of("samples/tcp-routing/seed/tcp-routing.yaml"));

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 27, 8, 0, 0, TimeSpan.Zero));

    /// <summary>Fed by <see cref="Compile"/> as the controller's config watch feeds it.</summary>
    private readonly ObservedUids _uids = new();
    private FakeApiServer _server = null!;
    private IKubernetes _client = null!;
    private KubernetesStatusWriter _writer = null!;

    public async Task InitializeAsync()
    {
        _server = await FakeApiServer.StartAsync(new FakeApiServerOptions { InstallGatewayApiCrds = true });
        _server.ApplyYaml(Manifest, "httpbin");
        _client = new k8s.Kubernetes(_server.ClientConfiguration(), new CoreGroupPathHandler());
        _writer = new KubernetesStatusWriter(new ServedVersions(_client), new ApiObjects(_client), Ours, _uids, _time, NullLogger.Instance);
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task Writes_the_statuses_the_compiler_decided_through_the_status_subresource()
    {
        var key = new ResourceKey(ResourceKind.Gateway, "httpbin", "simple-fsm-gateway");
        var compiled = Compile();
        var statuses = compiled with { Gateways = compiled.Gateways.SetItem(key, compiled.Gateways[key] with { Addresses = [new GatewayAddress("IPAddress", "10.0.0.7")] }) };

        await _writer.WriteAsync(statuses, CancellationToken.None);

        var gatewayClass = _server.Get(GatewayV1, "GatewayClass", null, "fsm")!;
        Assert.Equal("True", Condition(gatewayClass["status"]!, "Accepted")["status"]!.GetValue<string>());
        var gateway = _server.Get(GatewayV1, "Gateway", "httpbin", "simple-fsm-gateway")!;
        Assert.Equal("10.0.0.7", gateway["status"]!["addresses"]![0]!["value"]!.GetValue<string>());
        Assert.Equal("True", Condition(gateway["status"]!, "Programmed")["status"]!.GetValue<string>());
        Assert.Equal(["foo", "bar"], gateway["status"]!["listeners"]!.AsArray().Select(l => l!["name"]!.GetValue<string>()));
        Assert.All(gateway["status"]!["listeners"]!.AsArray(), l => Assert.Equal(1, l!["attachedRoutes"]!.GetValue<int>()));
        Assert.Equal("2026-11-27T08:00:00Z", Condition(gateway["status"]!, "Accepted")["lastTransitionTime"]!.GetValue<string>());
        var route = _server.Get("gateway.networking.k8s.io/v1alpha2", "TCPRoute", "httpbin", "tcp-route")!;
        Assert.Equal(2, route["status"]!["parents"]!.AsArray().Count);
        Assert.Equal("1", gateway["metadata"]!["generation"]!.ToJsonString());
        Assert.Contains(_server.Requests, r => r is { Verb: "update", Resource: "gateways", Subresource: "status" });
        Assert.DoesNotContain(_server.Requests, r => r.Verb is "update" or "patch" && r.Subresource is null);
    }

    [Fact]
    public async Task Writes_nothing_when_nothing_changed()
    {
        await _writer.WriteAsync(Compile(), CancellationToken.None);
        var requests = _server.Requests.Count;

        await _writer.WriteAsync(Compile(), CancellationToken.None);
        Assert.Equal(requests, _server.Requests.Count);

        // A writer that forgot what it wrote (a new leader) reads, finds it equal, and writes nothing.
        _writer.Reset();
        await _writer.WriteAsync(Compile(), CancellationToken.None);
        Assert.DoesNotContain(_server.Requests.Skip(requests), r => r.Verb == "update");
    }

    [Fact]
    public async Task Writes_the_status_of_a_gateway_deleted_and_created_again_under_its_name_though_the_status_is_the_same()
    {
        var key = new ResourceKey(ResourceKind.Gateway, "httpbin", "simple-fsm-gateway");
        var before = Compile();
        await _writer.WriteAsync(before, CancellationToken.None);
        var old = _server.Get(GatewayV1, "Gateway", "httpbin", "simple-fsm-gateway")!;
        Assert.NotNull(old["status"]?["listeners"]);

        // Deleted and created again before the next pass (as within one debounce window, or while a pass is busy): no
        // status set without it comes between, and the new object's compiled status equals the old one's.
        _server.Delete(GatewayV1, "Gateway", "httpbin", "simple-fsm-gateway");
        _uids.Deleted(key);
        _server.ApplyYaml(Manifest, "httpbin");
        var again = Compile();
        var created = _server.Get(GatewayV1, "Gateway", "httpbin", "simple-fsm-gateway")!;
        Assert.NotEqual(old["metadata"]!["uid"]!.GetValue<string>(), created["metadata"]!["uid"]!.GetValue<string>());
        Assert.Null(created["status"]?["listeners"]);
        Assert.Equal(StatusJson.Gateway(before.Gateways[key]).ToJsonString(), StatusJson.Gateway(again.Gateways[key]).ToJsonString());

        Assert.True(await _writer.WriteAsync(again, CancellationToken.None));

        var status = _server.Get(GatewayV1, "Gateway", "httpbin", "simple-fsm-gateway")!["status"]!;
        Assert.Equal(["foo", "bar"], status["listeners"]!.AsArray().Select(l => l!["name"]!.GetValue<string>()));
        Assert.Equal("True", Condition(status, "Accepted")["status"]!.GetValue<string>());

        // And once written to the new object, an unchanged status costs no request again.
        var requests = _server.Requests.Count;
        Assert.True(await _writer.WriteAsync(Compile(), CancellationToken.None));
        Assert.Equal(requests, _server.Requests.Count);
    }

    [Fact]
    public async Task A_pass_before_the_watch_shows_a_gateways_new_uid_is_followed_by_one_that_writes_it()
    {
        await _writer.WriteAsync(Compile(), CancellationToken.None);

        // The API server has the new object, the watch has not told us yet: this pass cannot tell it from the old one.
        _server.Delete(GatewayV1, "Gateway", "httpbin", "simple-fsm-gateway");
        _server.ApplyYaml(Manifest, "httpbin");
        Assert.True(await _writer.WriteAsync(Compile(observe: false), CancellationToken.None));

        // The watch's event (which brings a new snapshot, so a new pass) tells the new uid first: that pass writes.
        Assert.True(await _writer.WriteAsync(Compile(), CancellationToken.None));
        Assert.NotNull(_server.Get(GatewayV1, "Gateway", "httpbin", "simple-fsm-gateway")!["status"]?["listeners"]);
    }

    [Fact]
    public async Task Keeps_lastTransitionTime_while_status_and_reason_hold_and_moves_it_when_they_change()
    {
        await _writer.WriteAsync(Compile(), CancellationToken.None);
        _time.Advance(TimeSpan.FromMinutes(5));

        // The route now points at a Service that does not exist: ResolvedRefs turns False; Accepted holds.
        _server.ApplyYaml(File.ReadAllText(RepoPaths.Of("samples/tcp-routing/seed/tcp-routing.yaml")).Replace("- name: httpbin\n          port: 8080", "- name: nothere\n          port: 8080", StringComparison.Ordinal), "httpbin");
        await _writer.WriteAsync(Compile(), CancellationToken.None);

        var parent = _server.Get("gateway.networking.k8s.io/v1alpha2", "TCPRoute", "httpbin", "tcp-route")!["status"]!["parents"]![0]!;
        Assert.Equal("False", Condition(parent, "ResolvedRefs")["status"]!.GetValue<string>());
        Assert.Equal("2026-11-27T08:05:00Z", Condition(parent, "ResolvedRefs")["lastTransitionTime"]!.GetValue<string>());
        Assert.Equal("2026-11-27T08:00:00Z", Condition(parent, "Accepted")["lastTransitionTime"]!.GetValue<string>());
        Assert.Equal("2", Condition(parent, "Accepted")["observedGeneration"]!.ToJsonString());
    }

    [Fact]
    public async Task Leaves_other_controllers_route_parents_alone()
    {
        var other = new JsonObject
        {
            ["parentRef"] = new JsonObject { ["group"] = "gateway.networking.k8s.io", ["kind"] = "Gateway", ["namespace"] = "httpbin", ["name"] = "theirs" },
            ["controllerName"] = "example.com/other",
            ["conditions"] = new JsonArray(new JsonObject { ["type"] = "Accepted", ["status"] = "True", ["reason"] = "Accepted", ["message"] = "", ["lastTransitionTime"] = "2020-01-01T00:00:00Z", ["observedGeneration"] = 1 }),
        };
        _server.SetStatus("gateway.networking.k8s.io/v1alpha2", "TCPRoute", "httpbin", "tcp-route", new JsonObject { ["parents"] = new JsonArray(other) });

        await _writer.WriteAsync(Compile(), CancellationToken.None);

        var parents = _server.Get("gateway.networking.k8s.io/v1alpha2", "TCPRoute", "httpbin", "tcp-route")!["status"]!["parents"]!.AsArray();
        Assert.Equal(3, parents.Count);
        Assert.True(JsonNode.DeepEquals(other, parents[0]));
        Assert.All(parents.Skip(1), p => Assert.Equal(Ours, p!["controllerName"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Retries_when_the_object_changed_between_read_and_write()
    {
        var raced = 0;
        _server.RequestHandled += request =>
        {
            if (request is { Verb: "get", Resource: "gateways" } && Interlocked.Exchange(ref raced, 1) == 0)
            {
                // Someone else writes the Gateway between our read and our write.
                var gateway = _server.Get(GatewayV1, "Gateway", "httpbin", "simple-fsm-gateway")!;
                gateway["metadata"]!["labels"] = new JsonObject { ["touched"] = "yes" };
                _server.Apply(gateway);
            }
        };

        await _writer.WriteAsync(Compile(), CancellationToken.None);

        Assert.Contains(_server.Requests, r => r is { Verb: "update", Resource: "gateways", Subresource: "status", StatusCode: 409 });
        Assert.Contains(_server.Requests, r => r is { Verb: "update", Resource: "gateways", Subresource: "status", StatusCode: 200 });
        Assert.NotNull(_server.Get(GatewayV1, "Gateway", "httpbin", "simple-fsm-gateway")!["status"]?["listeners"]);
    }

    private const string Policies = """
        apiVersion: gateway.flomesh.io/v1alpha2
        kind: HealthCheckPolicy
        metadata: { name: hc }
        spec:
          targetRefs: [{ group: "", kind: Service, name: httpbin }]
          healthCheck: { interval: 1s, maxFails: 3 }
        ---
        apiVersion: gateway.fsmgateway.io/v1alpha1
        kind: BackendTrafficPolicy
        metadata: { name: missing-rule }
        spec:
          targetRefs: [{ group: gateway.networking.k8s.io, kind: TCPRoute, name: tcp-route, sectionName: nope }]
          proxyProtocol: { version: V2 }
        ---
        apiVersion: gateway.flomesh.io/v1alpha2
        kind: BackendLBPolicy
        metadata: { name: unrelated }
        spec:
          targetRefs: [{ group: "", kind: Service, name: not-used-by-us }]
        ---
        apiVersion: v1
        kind: Service
        metadata: { name: not-used-by-us }
        spec:
          ports: [{ port: 80 }]
        """;

    [Fact]
    public async Task Writes_policy_ancestors_keeping_other_controllers_entries_and_leaves_policies_that_reach_nothing_of_ours_alone()
    {
        _server.InstallPolicyCrds();
        _server.ApplyYaml(Policies, "httpbin");
        var theirs = new JsonObject
        {
            ["ancestorRef"] = new JsonObject { ["group"] = "gateway.networking.k8s.io", ["kind"] = "Gateway", ["namespace"] = "httpbin", ["name"] = "theirs" },
            ["controllerName"] = "example.com/other",
            ["conditions"] = new JsonArray(new JsonObject { ["type"] = "Accepted", ["status"] = "True", ["reason"] = "Accepted", ["message"] = "", ["lastTransitionTime"] = "2020-01-01T00:00:00Z", ["observedGeneration"] = 1 }),
        };
        _server.SetStatus("gateway.flomesh.io/v1alpha2", "HealthCheckPolicy", "httpbin", "hc", new JsonObject { ["ancestors"] = new JsonArray(theirs) });

        Assert.True(await _writer.WriteAsync(Compile(), CancellationToken.None));

        var ancestors = _server.Get("gateway.flomesh.io/v1alpha2", "HealthCheckPolicy", "httpbin", "hc")!["status"]!["ancestors"]!.AsArray();
        Assert.Equal(2, ancestors.Count);
        Assert.Equal("example.com/other", ancestors[0]!["controllerName"]!.GetValue<string>());
        Assert.Equal("simple-fsm-gateway", ancestors[1]!["ancestorRef"]!["name"]!.GetValue<string>());
        Assert.Equal(Ours, ancestors[1]!["controllerName"]!.GetValue<string>());
        Assert.Equal(("True", "2026-11-27T08:00:00Z"), (Condition(ancestors[1]!, "Accepted")["status"]!.GetValue<string>(), Condition(ancestors[1]!, "Accepted")["lastTransitionTime"]!.GetValue<string>()));

        var missing = _server.Get("gateway.fsmgateway.io/v1alpha1", "BackendTrafficPolicy", "httpbin", "missing-rule")!["status"]!["ancestors"]![0]!;
        Assert.Equal(("TCPRoute", "nope"), (missing["ancestorRef"]!["kind"]!.GetValue<string>(), missing["ancestorRef"]!["sectionName"]!.GetValue<string>()));
        Assert.Equal("TargetNotFound", Condition(missing, "Accepted")["reason"]!.GetValue<string>());

        // A policy that reaches no Gateway of ours gets no status write at all.
        Assert.Null(_server.Get("gateway.flomesh.io/v1alpha2", "BackendLBPolicy", "httpbin", "unrelated")!["status"]);
        Assert.DoesNotContain(_server.Requests, r => r is { Resource: "backendlbpolicies", Verb: "update" });
        Assert.Contains(_server.Requests, r => r is { Resource: "healthcheckpolicies", Subresource: "status", Verb: "update" });
    }

    [Fact]
    public async Task Policy_statuses_are_skipped_quietly_when_the_cluster_does_not_serve_the_policy_crds()
    {
        var statuses = Compile() with { };
        var withPolicy = statuses with
        {
            Policies = statuses.Policies.SetItem(
                new ResourceKey(ResourceKind.HealthCheckPolicy, "httpbin", "hc"),
                new PolicyStatus([new PolicyAncestorStatus(new ParentReference(GatewayApi.Group, "Gateway", "httpbin", "simple-fsm-gateway", null, null), Ours, [new Condition("Accepted", ConditionStatus.True, "Accepted", "Accepted", 1)])])),
        };

        Assert.True(await _writer.WriteAsync(withPolicy, CancellationToken.None));

        Assert.DoesNotContain(_server.Requests, r => r.Resource == "healthcheckpolicies");
    }

    private const string ClientPolicies = """
        apiVersion: extension.gateway.flomesh.io/v1alpha1
        kind: ListenerFilter
        metadata: { name: allow-office }
        spec:
          type: IPRestriction
          targetRefs:
            - { group: gateway.networking.k8s.io, kind: Gateway, name: simple-fsm-gateway, port: 8000 }
          configRef: { group: extension.gateway.flomesh.io, kind: IPRestriction, name: office }
        ---
        apiVersion: extension.gateway.flomesh.io/v1alpha1
        kind: IPRestriction
        metadata: { name: office }
        spec:
          allowed: ["192.0.2.0/24"]
        ---
        apiVersion: gateway.fsmgateway.io/v1alpha1
        kind: ClientTrafficPolicy
        metadata: { name: keepalive }
        spec:
          targetRefs:
            - { group: gateway.networking.k8s.io, kind: Gateway, name: simple-fsm-gateway, sectionName: foo }
          tcpKeepalive: { probes: 3 }
        ---
        apiVersion: gateway.flomesh.io/v1alpha1
        kind: RateLimitPolicy
        metadata: { name: slow }
        spec:
          targetRef: { group: gateway.networking.k8s.io, kind: Gateway, name: simple-fsm-gateway }
          ports:
            - { port: 8001, bps: 4096 }
        """;

    [Fact]
    public async Task Writes_the_accepted_condition_of_fsm_filter_kinds_keeping_conditions_of_other_types_and_client_policy_ancestors()
    {
        _server.InstallClientPolicyCrds();
        _server.ApplyYaml(ClientPolicies, "httpbin");
        var theirs = new JsonObject { ["type"] = "Programmed", ["status"] = "True", ["reason"] = "Programmed", ["message"] = "by someone else", ["lastTransitionTime"] = "2020-01-01T00:00:00Z" };
        var stale = new JsonObject { ["type"] = "Accepted", ["status"] = "False", ["reason"] = "Invalid", ["message"] = "old", ["lastTransitionTime"] = "2020-01-01T00:00:00Z" };
        _server.SetStatus("extension.gateway.flomesh.io/v1alpha1", "ListenerFilter", "httpbin", "allow-office", new JsonObject { ["conditions"] = new JsonArray(theirs, stale) });

        Assert.True(await _writer.WriteAsync(Compile(), CancellationToken.None));

        var filter = _server.Get("extension.gateway.flomesh.io/v1alpha1", "ListenerFilter", "httpbin", "allow-office")!["status"]!;
        Assert.Equal(2, filter["conditions"]!.AsArray().Count);
        Assert.Equal("by someone else", Condition(filter, "Programmed")["message"]!.GetValue<string>());
        Assert.Equal(("True", "Accepted", "2026-11-27T08:00:00Z"), (Condition(filter, "Accepted")["status"]!.GetValue<string>(), Condition(filter, "Accepted")["reason"]!.GetValue<string>(), Condition(filter, "Accepted")["lastTransitionTime"]!.GetValue<string>()));
        var config = _server.Get("extension.gateway.flomesh.io/v1alpha1", "IPRestriction", "httpbin", "office")!["status"]!;
        Assert.Equal("True", Condition(config, "Accepted")["status"]!.GetValue<string>());
        var rateLimit = _server.Get("gateway.flomesh.io/v1alpha1", "RateLimitPolicy", "httpbin", "slow")!["status"]!;
        Assert.Equal("True", Condition(rateLimit, "Accepted")["status"]!.GetValue<string>());
        var ancestor = _server.Get("gateway.fsmgateway.io/v1alpha1", "ClientTrafficPolicy", "httpbin", "keepalive")!["status"]!["ancestors"]![0]!;
        Assert.Equal(("simple-fsm-gateway", "foo"), (ancestor["ancestorRef"]!["name"]!.GetValue<string>(), ancestor["ancestorRef"]!["sectionName"]!.GetValue<string>()));
        Assert.Equal("True", Condition(ancestor, "Accepted")["status"]!.GetValue<string>());
        Assert.Contains(_server.Requests, r => r is { Resource: "listenerfilters", Subresource: "status", Verb: "update" });
    }

    /// <summary>Compiles what the fake holds; with <paramref name="observe"/>, tells <see cref="_uids"/> each object's uid first, as the watch would.</summary>
    private StatusSet Compile(bool observe = true)
    {
        var crds = _server.List("apiextensions.k8s.io/v1", "CustomResourceDefinition").Select(c => c["metadata"]!["name"]!.GetValue<string>()).ToHashSet();
        var policyKinds = crds.Contains("healthcheckpolicies.gateway.flomesh.io")
            ? _server.List("gateway.flomesh.io/v1alpha2", "HealthCheckPolicy")
                .Concat(_server.List("gateway.flomesh.io/v1alpha2", "BackendLBPolicy"))
                .Concat(_server.List("gateway.fsmgateway.io/v1alpha1", "BackendTrafficPolicy"))
            : [];
        if (crds.Contains("clienttrafficpolicies.gateway.fsmgateway.io"))
        {
            policyKinds = policyKinds
                .Concat(_server.List("gateway.fsmgateway.io/v1alpha1", "ClientTrafficPolicy"))
                .Concat(_server.List("gateway.flomesh.io/v1alpha1", "RateLimitPolicy"))
                .Concat(_server.List("extension.gateway.flomesh.io/v1alpha1", "ListenerFilter"))
                .Concat(_server.List("extension.gateway.flomesh.io/v1alpha1", "IPRestriction"));
        }

        var resources = _server.List(GatewayV1, "GatewayClass")
            .Concat(_server.List(GatewayV1, "Gateway"))
            .Concat(_server.List("gateway.networking.k8s.io/v1alpha2", "TCPRoute"))
            .Concat(_server.List("v1", "Service"))
            .Concat(policyKinds)
            .Select(o => ResourceMapper.Map(o, string.Empty).Resource)
            .OfType<Resource>()
            .ToList();
        if (observe)
        {
            foreach (var resource in resources)
            {
                _uids.Upserted(resource.Key, resource.Metadata.Uid);
            }
        }

        return RouteCompiler.Compile(ConfigSnapshot.From(resources), CompilerOptions.Default, ListenerBindings.AssumeAllBound).Statuses;
    }

    private static JsonNode Condition(JsonNode status, string type) =>
        status["conditions"]!.AsArray().Single(c => c!["type"]!.GetValue<string>() == type)!;
}
