using FsmGateway.Kubernetes.Manifests;
using FsmGateway.Resources;

namespace FsmGateway.Kubernetes.Tests;

/// <summary>
/// Issue 10: FSM's ListenerFilter, Filter, ConcurrencyLimit, IPRestriction, RouteRuleFilterPolicy and first-generation
/// RateLimitPolicy, and our ClientTrafficPolicy, are read from manifests (the same mapper serves the API watch); what
/// their CRDs would refuse is a manifest error naming the field.
/// </summary>
public sealed class ClientPolicyMappingTests
{
    private const string ClientTrafficPolicy = """
        apiVersion: gateway.fsmgateway.io/v1alpha1
        kind: ClientTrafficPolicy
        metadata:
          name: ctp
        spec:
          targetRefs:
            - group: gateway.networking.k8s.io
              kind: Gateway
              name: gw
              sectionName: tcp
          proxyProtocol:
            optional: true
          tcpKeepalive:
            probes: 3
            idleTime: 60s
            interval: 10s
          timeout:
            tcp:
              idleTimeout: 10m
              connectionInspectionTimeout: 5s
              halfClosedTimeout: 30s
          connection:
            connectionLimit:
              value: 1000
              closeDelay: 1s
            bufferLimit: 64Ki
            maxConnectionDuration: 1h
          bandwidthLimit:
            upload:
              bytesPerSecond: 1Mi
              burst: 64Ki
            download:
              bytesPerSecond: 2000000
        """;

    private const string Fsm = """
        apiVersion: extension.gateway.flomesh.io/v1alpha1
        kind: ListenerFilter
        metadata:
          name: lf
        spec:
          type: IPRestriction
          priority: 7
          targetRefs:
            - group: gateway.networking.k8s.io
              kind: Gateway
              name: gw
              port: 8000
          configRef:
            group: extension.gateway.flomesh.io
            kind: IPRestriction
            name: ip
        ---
        apiVersion: extension.gateway.flomesh.io/v1alpha1
        kind: IPRestriction
        metadata:
          name: ip
        spec:
          allowed: ["10.0.0.0/8", "2001:db8::1"]
          forbidden: ["10.1.2.3"]
        ---
        apiVersion: extension.gateway.flomesh.io/v1alpha1
        kind: ConcurrencyLimit
        metadata:
          name: cl
        spec: {}
        ---
        apiVersion: extension.gateway.flomesh.io/v1alpha1
        kind: Filter
        metadata:
          name: f
        spec:
          type: ConcurrencyLimit
          configRef:
            group: extension.gateway.flomesh.io
            kind: ConcurrencyLimit
            name: cl
        ---
        apiVersion: gateway.flomesh.io/v1alpha2
        kind: RouteRuleFilterPolicy
        metadata:
          name: rf
        spec:
          targetRefs:
            - group: gateway.networking.k8s.io
              kind: TCPRoute
              name: route
              rule: main
          filterRefs:
            - group: extension.gateway.flomesh.io
              kind: Filter
              name: f
        ---
        apiVersion: gateway.flomesh.io/v1alpha1
        kind: RateLimitPolicy
        metadata:
          name: rl
        spec:
          targetRef:
            group: gateway.networking.k8s.io
            kind: Gateway
            name: gw
          bps: 1000
          ports:
            - port: 8000
            - port: 8001
              bps: 250
        """;

    [Fact]
    public void A_ClientTrafficPolicy_is_read_with_envoy_gateway_field_names_and_our_extensions()
    {
        var set = ManifestReader.ReadText(ClientTrafficPolicy, "ctp.yaml");

        Assert.Empty(set.Errors);
        Assert.Empty(set.Notes);
        var policy = Assert.IsType<ClientTrafficPolicy>(Assert.Single(set.Resources));
        Assert.Equal(new PolicyTargetReference(GatewayApi.Group, "Gateway", "gw") { SectionName = "tcp" }, Assert.Single(policy.TargetRefs));
        Assert.Equal(new ProxyProtocolSpec(Optional: true), policy.ProxyProtocol);
        Assert.Equal(new TcpKeepaliveSpec(3, TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(10)), policy.TcpKeepalive);
        Assert.Equal((TimeSpan.FromMinutes(10), TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30)), (policy.IdleTimeout, policy.ConnectionInspectionTimeout, policy.HalfClosedTimeout));
        Assert.Equal(new ConnectionLimitSpec(1000, TimeSpan.FromSeconds(1)), policy.ConnectionLimit);
        Assert.Equal(65536, policy.BufferLimit);
        Assert.Equal(TimeSpan.FromHours(1), policy.MaxConnectionDuration);
        Assert.Equal(new BandwidthLimitSpec(1 << 20, 65536), policy.UploadBandwidth);
        Assert.Equal(new BandwidthLimitSpec(2_000_000, null), policy.DownloadBandwidth);
        Assert.True(policy.UnsupportedFields.IsEmpty);
    }

    [Fact]
    public void Envoy_gateway_1_9s_place_for_maxConnectionDuration_and_the_deprecated_enableProxyProtocol_are_read()
    {
        var set = ManifestReader.ReadText(ClientTrafficPolicy
            .Replace("  proxyProtocol:\n    optional: true\n", "  enableProxyProtocol: true\n", StringComparison.Ordinal)
            .Replace("      closeDelay: 1s\n", "      closeDelay: 1s\n      maxConnectionDuration: 2h\n", StringComparison.Ordinal)
            .Replace("    maxConnectionDuration: 1h\n", string.Empty, StringComparison.Ordinal), "ctp.yaml");

        var policy = Assert.IsType<ClientTrafficPolicy>(Assert.Single(set.Resources));
        Assert.Equal(new ProxyProtocolSpec(Optional: false), policy.ProxyProtocol);
        Assert.Equal(TimeSpan.FromHours(2), policy.MaxConnectionDuration);
    }

    [Fact]
    public void Envoy_gateway_fields_a_tcp_listener_cannot_honour_are_kept_for_the_compiler_to_refuse()
    {
        var set = ManifestReader.ReadText(ClientTrafficPolicy + "\n  tls:\n    minVersion: \"1.3\"\n  http1:\n    preserveHeaderCase: true\n", "ctp.yaml");

        Assert.Empty(set.Errors);
        Assert.Empty(set.Notes);
        var policy = Assert.IsType<ClientTrafficPolicy>(Assert.Single(set.Resources));
        Assert.Equal(["spec.tls", "spec.http1"], policy.UnsupportedFields);
    }

    [Theory]
    [InlineData("    optional: true", "    optional: maybe", "spec.proxyProtocol.optional", "expected true or false")]
    [InlineData("  proxyProtocol:", "  enableProxyProtocol: true\n  proxyProtocol:", "spec.enableProxyProtocol", "cannot be set together with proxyProtocol")]
    [InlineData("      value: 1000", "      value: 0", "spec.connection.connectionLimit.value", "0 is out of range")]
    [InlineData("      value: 1000\n", "", "spec.connection.connectionLimit.value", "is required when closeDelay is set")]
    [InlineData("    bufferLimit: 64Ki", "    bufferLimit: 1.5Mi", "spec.connection.bufferLimit", "'1.5Mi' is not a quantity of bytes")]
    [InlineData("    bufferLimit: 64Ki", "    bufferLimit: 99999999999999999999Ki", "spec.connection.bufferLimit", "is not a quantity of bytes")]
    [InlineData("      burst: 64Ki", "      burst: 0", "spec.bandwidthLimit.upload.burst", "0 is out of range")]
    [InlineData("      bytesPerSecond: 1Mi\n", "", "spec.bandwidthLimit.upload.bytesPerSecond", "is required")]
    [InlineData("      idleTimeout: 10m", "      idleTimeout: forever", "spec.timeout.tcp.idleTimeout", "'forever' is not a duration")]
    [InlineData("      closeDelay: 1s", "      closeDelay: 1s\n      maxConnectionDuration: 2h", "spec.connection.connectionLimit.maxConnectionDuration", "cannot be set together with spec.connection.maxConnectionDuration")]
    public void A_ClientTrafficPolicy_its_crd_refuses_is_a_manifest_error_naming_the_field(string find, string replace, string field, string message)
    {
        var text = ClientTrafficPolicy.Replace(find, replace, StringComparison.Ordinal);
        Assert.NotEqual(ClientTrafficPolicy, text);

        var error = Assert.Single(ManifestReader.ReadText(text, "ctp.yaml").Errors);

        Assert.Equal(field, error.Field);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Fsm_filter_kinds_and_policies_are_read_as_fsm_users_write_them()
    {
        var set = ManifestReader.ReadText(Fsm, "fsm.yaml");

        Assert.Empty(set.Errors);
        Assert.Empty(set.Notes);
        var listenerFilter = Assert.Single(set.Resources.OfType<ListenerFilter>());
        Assert.Equal(("IPRestriction", 7, "Listener"), (listenerFilter.Type, listenerFilter.Priority, listenerFilter.Aspect));
        Assert.Equal(new PortTargetReference(GatewayApi.Group, "Gateway", "gw", 8000), Assert.Single(listenerFilter.TargetRefs));
        Assert.Equal(new LocalObjectReference(PolicyApi.FsmExtensionGroup, "IPRestriction", "ip"), listenerFilter.ConfigRef);
        var ip = Assert.Single(set.Resources.OfType<IPRestrictionConfig>());
        Assert.Equal(["10.0.0.0/8", "2001:db8::1"], ip.Allowed);
        Assert.Equal(["10.1.2.3"], ip.Forbidden);
        Assert.Equal(100, Assert.Single(set.Resources.OfType<ConcurrencyLimitConfig>()).MaxConnections);
        Assert.Equal("ConcurrencyLimit", Assert.Single(set.Resources.OfType<FsmFilter>()).Type);
        var rf = Assert.Single(set.Resources.OfType<RouteRuleFilterPolicy>());
        Assert.Equal(new PolicyTargetReference(GatewayApi.Group, "TCPRoute", "route") { SectionName = "main" }, Assert.Single(rf.TargetRefs));
        Assert.Equal(new FilterReference(PolicyApi.FsmExtensionGroup, "Filter", "f", 100), Assert.Single(rf.FilterRefs));
        var rl = Assert.Single(set.Resources.OfType<RateLimitPolicy>());
        Assert.Equal(1000, rl.Bps);
        Assert.Equal([new PortRateLimit(8000, null), new PortRateLimit(8001, 250)], rl.Ports);
        Assert.Equal("RateLimitPolicy default/rl", rl.Key.ToString());
    }

    [Theory]
    [InlineData("  type: IPRestriction", "  type: ipRestriction", "spec.type", "is not a filter type")]
    [InlineData("  priority: 7", "  priority: 10001", "spec.priority", "10001 is out of range 0..10000")]
    [InlineData("  priority: 7", "  aspect: Both", "spec.aspect", "'Both' is not one of Listener, Route")]
    [InlineData("      port: 8000", "      port: 0", "spec.targetRefs[0].port", "0 is out of range 1..65535")]
    [InlineData("      port: 8000\n", "", "spec.targetRefs[0].port", "is required")]
    [InlineData("  allowed: [\"10.0.0.0/8\", \"2001:db8::1\"]", "  allowed: [\"10.0.0.0/8\", \"10.0.0.0/8\"]", "spec.allowed[1]", "duplicate entry")]
    [InlineData("spec: {}", "spec:\n  maxConnections: 0", "spec.maxConnections", "0 is out of range")]
    [InlineData("      rule: main\n", "", "spec.targetRefs[0].rule", "is required")]
    [InlineData("      kind: Filter", "      kind: ConcurrencyLimit", "spec.filterRefs[0].kind", "is not one of Filter")]
    [InlineData("      kind: TCPRoute", "      kind: HTTPRoute", "spec.targetRefs[0].kind", "is not one of TCPRoute, UDPRoute")]
    [InlineData("  bps: 1000", "  bps: 0", "spec.bps", "0 is out of range")]
    [InlineData("    - port: 8000\n    - port: 8001", "    - port: 8001\n    - port: 8001", "spec.ports[1].port", "duplicate port 8001")]
    public void A_fsm_object_its_crd_refuses_is_a_manifest_error_naming_the_field(string find, string replace, string field, string message)
    {
        var text = Fsm.Replace(find, replace, StringComparison.Ordinal);
        Assert.NotEqual(Fsm, text);

        var error = Assert.Single(ManifestReader.ReadText(text, "fsm.yaml").Errors);

        Assert.Equal(field, error.Field);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_same_objects_read_twice_are_equal_so_a_resync_causes_no_recompile()
    {
        var first = ManifestReader.ReadText(Fsm + "\n---\n" + ClientTrafficPolicy, "p.yaml").Resources;
        var second = ManifestReader.ReadText(Fsm + "\n---\n" + ClientTrafficPolicy, "p.yaml").Resources;

        Assert.Equal(7, first.Length);
        Assert.True(first.SequenceEqual(second), "objects read twice must compare equal");
    }

    [Fact]
    public void A_misspelt_field_is_a_located_note()
    {
        var set = ManifestReader.ReadText(ClientTrafficPolicy.Replace("      halfClosedTimeout: 30s", "      halfCloseTimeout: 30s", StringComparison.Ordinal), "ctp.yaml");

        Assert.Single(set.Resources);
        Assert.Contains("spec.timeout.tcp.halfCloseTimeout: unknown field", Assert.Single(set.Notes), StringComparison.Ordinal);
    }
}
