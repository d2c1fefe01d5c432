using FsmGateway.Kubernetes.Manifests;
using FsmGateway.Resources;

namespace FsmGateway.Kubernetes.Tests;

/// <summary>
/// Issue 15: FSM's HealthCheckPolicy and BackendLBPolicy and our BackendTrafficPolicy are read from manifests (the same
/// mapper serves the API watch); what their CRDs would refuse is a manifest error naming the field (ADR 0002).
/// </summary>
public sealed class PolicyMappingTests
{
    private const string HealthCheckPolicy = """
        apiVersion: gateway.flomesh.io/v1alpha2
        kind: HealthCheckPolicy
        metadata:
          name: hc
          namespace: apps
        spec:
          targetRefs:
            - group: ""
              kind: Service
              name: echo
              namespace: other
          ports:
            - port: 8080
              healthCheck:
                interval: 1m30s
                maxFails: 3
                failTimeout: 500ms
                path: /healthz
                matches:
                  - statusCodes: [200, 201]
                    body: ok
                    headers:
                      - name: X-Ready
                        value: "yes"
          healthCheck:
            interval: 0s
            maxFails: 2
        """;

    private const string BackendTrafficPolicy = """
        apiVersion: gateway.fsmgateway.io/v1alpha1
        kind: BackendTrafficPolicy
        metadata:
          name: btp
        spec:
          targetRefs:
            - group: gateway.networking.k8s.io
              kind: TCPRoute
              name: route
              sectionName: main
          loadBalancer:
            type: ConsistentHash
            consistentHash:
              type: SourceIP
              tableSize: 251
          healthCheck:
            active:
              type: TCP
              timeout: 1s
              interval: 2s
              unhealthyThreshold: 4
              healthyThreshold: 2
              tcp:
                send:
                  type: Binary
                  binary: AQID
                receive:
                  type: Text
                  text: pong
            passive:
              consecutiveLocalOriginFailures: 7
              interval: 1s
              baseEjectionTime: 1m
              maxEjectionPercent: 20
            panicThreshold: 30
          circuitBreaker:
            maxConnections: 4294967295
            perEndpoint:
              maxConnections: 10
          proxyProtocol:
            version: V1
          tcpKeepalive:
            probes: 3
            idleTime: 30s
            interval: 5s
          timeout:
            tcp:
              connectTimeout: 2s
        """;

    [Fact]
    public void An_fsm_HealthCheckPolicy_is_read_as_fsm_users_write_it()
    {
        var set = ManifestReader.ReadText(HealthCheckPolicy, "hc.yaml");

        Assert.Empty(set.Errors);
        Assert.Empty(set.Notes);
        var policy = Assert.IsType<HealthCheckPolicy>(Assert.Single(set.Resources));
        Assert.Equal(new PolicyTargetReference("", "Service", "echo") { Namespace = "other" }, Assert.Single(policy.TargetRefs));
        var port = Assert.Single(policy.Ports);
        Assert.Equal(8080, port.Port);
        Assert.Equal(
            new FsmHealthCheck(TimeSpan.FromSeconds(90), 3, TimeSpan.FromMilliseconds(500), "/healthz", [new HealthCheckMatch([200, 201], "ok", [new HttpHeaderValue("X-Ready", "yes")])]),
            port.HealthCheck);
        Assert.Equal(new FsmHealthCheck(TimeSpan.Zero, 2, null, null, []), policy.HealthCheck);
    }

    [Fact]
    public void A_BackendLBPolicy_is_read_with_session_persistence_flagged()
    {
        var set = ManifestReader.ReadText("""
            apiVersion: gateway.flomesh.io/v1alpha2
            kind: BackendLBPolicy
            metadata:
              name: lb
            spec:
              targetRefs:
                - kind: Service
                  name: echo
              algorithm: LeastLoad
              sessionPersistence:
                type: Cookie
            """, "lb.yaml");

        var policy = Assert.IsType<BackendLbPolicy>(Assert.Single(set.Resources));
        Assert.Equal("LeastLoad", policy.Algorithm);
        Assert.True(policy.HasSessionPersistence);
        Assert.Equal("BackendLBPolicy default/lb", policy.Key.ToString());
    }

    [Fact]
    public void A_BackendTrafficPolicy_is_read_with_envoy_gateway_field_names()
    {
        var set = ManifestReader.ReadText(BackendTrafficPolicy, "btp.yaml");

        Assert.Empty(set.Errors);
        Assert.Empty(set.Notes);
        var policy = Assert.IsType<BackendTrafficPolicy>(Assert.Single(set.Resources));
        Assert.Equal(new PolicyTargetReference(GatewayApi.Group, "TCPRoute", "route") { SectionName = "main" }, Assert.Single(policy.TargetRefs));
        Assert.Equal(new LoadBalancerSpec("ConsistentHash", "SourceIP", 251), policy.LoadBalancer);
        var active = policy.ActiveHealthCheck!;
        Assert.Equal(("TCP", TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), 4, 2), (active.Type, active.Timeout, active.Interval, active.UnhealthyThreshold, active.HealthyThreshold));
        Assert.Equal(new HealthCheckPayload("Binary", null, EquatableArray.Create<byte>([1, 2, 3])), active.TcpSend);
        Assert.Equal(new HealthCheckPayload("Text", "pong", null), active.TcpReceive);
        Assert.Equal(new PassiveHealthCheckSpec(7, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(1), 20), policy.PassiveHealthCheck);
        Assert.Equal(30, policy.PanicThreshold);
        Assert.Equal((4294967295L, 10L), (policy.MaxConnections, policy.MaxConnectionsPerEndpoint));
        Assert.Equal("V1", policy.ProxyProtocolVersion);
        Assert.Equal(new TcpKeepaliveSpec(3, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(5)), policy.TcpKeepalive);
        Assert.Equal(TimeSpan.FromSeconds(2), policy.ConnectTimeout);
    }

    [Fact]
    public void The_same_policy_read_twice_is_equal_so_a_resync_causes_no_recompile()
    {
        var first = ManifestReader.ReadText(BackendTrafficPolicy + "\n---\n" + HealthCheckPolicy, "p.yaml").Resources;
        var second = ManifestReader.ReadText(BackendTrafficPolicy + "\n---\n" + HealthCheckPolicy, "p.yaml").Resources;

        // Compared item by item as ConfigSnapshot.Apply does (ImmutableArray's own Equals compares references).
        Assert.Equal(2, first.Length);
        Assert.True(first.SequenceEqual(second), "a policy read twice must compare equal");
    }

    [Theory]
    [InlineData("interval: 1m30s", "interval: 90", "spec.ports[0].healthCheck.interval", "expected a string, got the number 90")]
    [InlineData("interval: 1m30s", "interval: 1.5s", "spec.ports[0].healthCheck.interval", "'1.5s' is not a duration")]
    [InlineData("interval: 1m30s", "interval: 123456s", "spec.ports[0].healthCheck.interval", "'123456s' is not a duration")]
    [InlineData("interval: 1m30s", "interval: 1h1m1s1ms1h", "spec.ports[0].healthCheck.interval", "is not a duration")]
    [InlineData("failTimeout: 500ms", "failTimeout: -1s", "spec.ports[0].healthCheck.failTimeout", "'-1s' is not a duration")]
    [InlineData("    maxFails: 2", "    maxFails: -1", "spec.healthCheck.maxFails", "-1 is out of range")]
    [InlineData("    maxFails: 2", "", "spec.healthCheck.maxFails", "is required")]
    [InlineData("    interval: 0s", "", "spec.healthCheck.interval", "is required")]
    [InlineData("  ports:\n    - port: 8080", "  ports:\n    - port: 0", "spec.ports[0].port", "0 is out of range 1..65535")]
    [InlineData("      kind: Service", "      kind: Service\n      name: x", "spec.targetRefs[0].name", "duplicate key")]
    [InlineData("      name: echo", "      name: Echo_1", "spec.targetRefs[0].name", "RFC 1123 subdomain")]
    [InlineData("      kind: Service\n", "", "spec.targetRefs[0].kind", "is required")]
    public void A_HealthCheckPolicy_its_crd_refuses_is_a_manifest_error_naming_the_field(string find, string replace, string field, string message)
    {
        var text = HealthCheckPolicy.Replace(find, replace, StringComparison.Ordinal);
        Assert.NotEqual(HealthCheckPolicy, text);

        var error = Assert.Single(ManifestReader.ReadText(text, "hc.yaml").Errors);

        Assert.Equal(field, error.Field);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("    type: ConsistentHash", "    type: LeastConn", "spec.loadBalancer.type", "'LeastConn' is not one of ConsistentHash, LeastRequest, Random, RoundRobin")]
    [InlineData("    consistentHash:\n      type: SourceIP\n      tableSize: 251\n", "", "spec.loadBalancer.consistentHash", "is required when type is ConsistentHash")]
    [InlineData("      tableSize: 251", "      tableSize: 1", "spec.loadBalancer.consistentHash.tableSize", "1 is out of range 2..5000011")]
    [InlineData("      type: SourceIP", "      type: ClientIP", "spec.loadBalancer.consistentHash.type", "'ClientIP' is not one of")]
    [InlineData("      type: TCP", "      type: HTTP", "spec.healthCheck.active.http", "is required when type is HTTP")]
    [InlineData("      type: TCP", "      type: UDP", "spec.healthCheck.active.type", "'UDP' is not one of HTTP, TCP, GRPC")]
    [InlineData("      unhealthyThreshold: 4", "      unhealthyThreshold: 0", "spec.healthCheck.active.unhealthyThreshold", "0 is out of range")]
    [InlineData("      timeout: 1s", "      timeout: soon", "spec.healthCheck.active.timeout", "'soon' is not a duration")]
    [InlineData("          binary: AQID", "          binary: '***'", "spec.healthCheck.active.tcp.send.binary", "is not base64")]
    [InlineData("          binary: AQID", "          text: x", "spec.healthCheck.active.tcp.send.binary", "is required when type is Binary")]
    [InlineData("          text: pong", "          binary: AQID", "spec.healthCheck.active.tcp.receive.text", "is required when type is Text")]
    [InlineData("      maxEjectionPercent: 20", "      maxEjectionPercent: 101", "spec.healthCheck.passive.maxEjectionPercent", "101 is out of range 0..100")]
    [InlineData("    panicThreshold: 30", "    panicThreshold: -5", "spec.healthCheck.panicThreshold", "-5 is out of range 0..100")]
    [InlineData("    maxConnections: 4294967295", "    maxConnections: 4294967296", "spec.circuitBreaker.maxConnections", "out of range 0..4294967295")]
    [InlineData("    version: V1", "    version: V3", "spec.proxyProtocol.version", "'V3' is not one of V1, V2")]
    [InlineData("    version: V1", "    optional: true", "spec.proxyProtocol.version", "is required")]
    [InlineData("      connectTimeout: 2s", "      connectTimeout: 2ns", "spec.timeout.tcp.connectTimeout", "'2ns' is not a duration")]
    [InlineData("    idleTime: 30s", "    idleTime: '30'", "spec.tcpKeepalive.idleTime", "'30' is not a duration")]
    [InlineData("      sectionName: main", "      sectionName: Main!", "spec.targetRefs[0].sectionName", "RFC 1123 subdomain")]
    public void A_BackendTrafficPolicy_its_crd_refuses_is_a_manifest_error_naming_the_field(string find, string replace, string field, string message)
    {
        var text = BackendTrafficPolicy.Replace(find, replace, StringComparison.Ordinal);
        Assert.NotEqual(BackendTrafficPolicy, text);

        var error = Assert.Single(ManifestReader.ReadText(text, "btp.yaml").Errors);

        Assert.Equal(field, error.Field);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_policy_without_targetRefs_or_with_more_than_16_is_a_manifest_error()
    {
        var none = BackendTrafficPolicy.Replace("  targetRefs:\n    - group: gateway.networking.k8s.io\n      kind: TCPRoute\n      name: route\n      sectionName: main\n", string.Empty, StringComparison.Ordinal);
        var many = BackendTrafficPolicy.Replace("  targetRefs:\n", "  targetRefs:\n" + string.Concat(Enumerable.Range(0, 16).Select(i => $"    - {{group: gateway.networking.k8s.io, kind: TCPRoute, name: r{i}}}\n")), StringComparison.Ordinal);

        Assert.Equal(("spec.targetRefs", "BackendTrafficPolicy btp: must hold at least one target"), Only(none));
        Assert.Equal(("spec.targetRefs", "BackendTrafficPolicy btp: holds 17 items; at most 16 are allowed"), Only(many));

        static (string?, string) Only(string text)
        {
            var error = Assert.Single(ManifestReader.ReadText(text, "btp.yaml").Errors);
            return (error.Field, error.Message);
        }
    }

    [Fact]
    public void Fields_an_envoy_gateway_user_may_paste_that_tcp_has_no_use_for_are_located_notes()
    {
        var text = BackendTrafficPolicy
            .Replace("  proxyProtocol:", "  retry:\n    numRetries: 3\n  proxyProtocol:", StringComparison.Ordinal)
            .Replace("      consecutiveLocalOriginFailures: 7", "      consecutiveLocalOriginFailures: 7\n      consecutive5XxErrors: 5", StringComparison.Ordinal);

        var set = ManifestReader.ReadText(text, "btp.yaml");

        Assert.Empty(set.Errors);
        Assert.Single(set.Resources);
        Assert.Equal(
        [
            "btp.yaml: document 1 (line 32): spec.healthCheck.passive.consecutive5XxErrors: unknown field, not in the BackendTrafficPolicy schema; ignored",
            "btp.yaml: document 1 (line 42): spec.retry: unknown field, not in the BackendTrafficPolicy schema; ignored",
        ], set.Notes, StringComparer.Ordinal);
    }

    [Theory]
    [InlineData("gateway.flomesh.io/v1alpha1", "HealthCheckPolicy")]
    [InlineData("gateway.envoyproxy.io/v1alpha1", "BackendTrafficPolicy")]
    public void Another_version_or_group_of_a_policy_is_skipped_with_a_note(string apiVersion, string kind)
    {
        var set = ManifestReader.ReadText($"apiVersion: {apiVersion}\nkind: {kind}\nmetadata:\n  name: p\nspec: {{}}\n", "p.yaml");

        Assert.Empty(set.Resources);
        Assert.Empty(set.Errors);
        Assert.Contains("skipped", Assert.Single(set.Notes), StringComparison.Ordinal);
    }
}
