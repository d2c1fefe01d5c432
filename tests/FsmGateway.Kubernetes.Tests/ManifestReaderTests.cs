using FsmGateway.Kubernetes.Manifests;
using FsmGateway.Resources;

namespace FsmGateway.Kubernetes.Tests;

public sealed class ManifestReaderTests
{
    private const string Gateway = """
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata:
          name: gw
        spec:
          gatewayClassName: fsm
          listeners:
            - name: foo
              port: 8000
              protocol: TCP
        """;

    [Fact]
    public void ReadText_ObjectWithoutNamespace_GoesIntoDefaultNamespace()
    {
        var set = ManifestReader.ReadText(Gateway, "gw.yaml", "httpbin");

        var gateway = Assert.IsType<Gateway>(Assert.Single(set.Resources));
        Assert.Equal("httpbin", gateway.Metadata.Namespace);
        Assert.Equal(8000, gateway.Listeners[0].Port);
        Assert.Equal(AllowedRoutes.Default, gateway.Listeners[0].AllowedRoutes);
    }

    [Fact]
    public void ReadText_ClusterScopedKinds_IgnoreTheDefaultNamespace()
    {
        const string text = """
            apiVersion: gateway.networking.k8s.io/v1
            kind: GatewayClass
            metadata: { name: fsm }
            spec: { controllerName: flomesh.io/gateway-controller }
            ---
            apiVersion: v1
            kind: Namespace
            metadata: { name: apps, labels: { team: a } }
            """;

        var set = ManifestReader.ReadText(text, "x.yaml", "httpbin");

        Assert.All(set.Resources, r => Assert.Equal(string.Empty, r.Metadata.Namespace));
        Assert.Equal("a", set.Resources.OfType<KubernetesNamespace>().Single().Metadata.Labels["team"]);
    }

    [Fact]
    public void ReadText_UnknownKind_IsSkippedWithANote()
    {
        const string text = """
            apiVersion: apps/v1
            kind: Deployment
            metadata: { name: httpbin }
            spec: { replicas: 1 }
            """;

        var set = ManifestReader.ReadText(text + "\n---\n" + Gateway, "seed.yaml");

        Assert.True(set.Succeeded);
        Assert.Single(set.Resources);
        Assert.Equal("seed.yaml: document 1 (line 1): skipped apps/v1 Deployment httpbin: not a kind FsmGateway reads", Assert.Single(set.Notes));
    }

    [Fact]
    public void ReadText_KnownKindInUnreadVersion_IsSkippedWithANoteSayingSo()
    {
        var set = ManifestReader.ReadText(Gateway.Replace("/v1\n", "/v9\n", StringComparison.Ordinal), "gw.yaml");

        Assert.Empty(set.Resources);
        Assert.Contains("apiVersion gateway.networking.k8s.io/v9 of Gateway is not one FsmGateway reads", Assert.Single(set.Notes), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("port: 8000", "port: eighty", 11, "spec.listeners[0].port: Gateway gw: expected an integer, got the string 'eighty'")]
    [InlineData("port: 8000", "port: \"8000\"", 11, "spec.listeners[0].port: Gateway gw: expected an integer, got the string '8000'")]
    [InlineData("port: 8000", "port: 70000", 11, "spec.listeners[0].port: Gateway gw: 70000 is out of range 1..65535")]
    [InlineData("  name: gw", "  labels: {}", 6, "metadata.name: Gateway: is required")]
    [InlineData("gatewayClassName: fsm", "gatewayClassName: [fsm]", 8, "spec.gatewayClassName: Gateway gw: expected a string, got a list")]
    [InlineData("protocol: TCP", "protocol: TCP\n      allowedRoutes: { namespaces: { from: Everywhere } }", 13, "spec.listeners[0].allowedRoutes.namespaces.from: Gateway gw: 'Everywhere' is not one of Same, All, Selector")]
    [InlineData("  listeners:", "  listeners: []\n  x:", 9, "spec.listeners: Gateway gw: must hold at least one listener")]
    public void ReadText_MalformedField_NamesFileDocumentLineAndField(string find, string replace, int expectedLine, string expected)
    {
        var text = "# leading comment\n---\n" + Gateway.Replace(find, replace, StringComparison.Ordinal);

        var set = ManifestReader.ReadText(text, "gw.yaml");

        var error = Assert.Single(set.Errors);
        Assert.Empty(set.Resources);
        Assert.Equal($"gw.yaml: document 2 (line {expectedLine}): {expected}", error.ToString());
    }

    [Fact]
    public void ReadText_DuplicateListenerNames_IsAnError()
    {
        var text = Gateway + "\n    - name: foo\n      port: 8001\n      protocol: TCP\n";

        var error = Assert.Single(ManifestReader.ReadText(text, "gw.yaml").Errors);

        Assert.Equal("spec.listeners[1].name", error.Field);
        Assert.Contains("duplicate listener name 'foo'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadText_WeightOutOfRange_IsAnError()
    {
        const string text = """
            apiVersion: gateway.networking.k8s.io/v1alpha2
            kind: TCPRoute
            metadata: { name: r }
            spec:
              rules:
                - backendRefs:
                    - { name: a, port: 80, weight: 1000001 }
            """;

        var error = Assert.Single(ManifestReader.ReadText(text, "r.yaml").Errors);

        Assert.Equal("spec.rules[0].backendRefs[0].weight", error.Field);
        Assert.Contains("out of range 0..1000000", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadText_YamlSyntaxError_ReportsDocumentAndLine_AndKeepsOtherDocuments()
    {
        var text = Gateway + "\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: [unclosed\n";

        var set = ManifestReader.ReadText(text, "bad.yaml");

        Assert.Single(set.Resources);
        var error = Assert.Single(set.Errors);
        Assert.Equal(2, error.Document);
        Assert.InRange(error.Line!.Value, 14, 16);
        Assert.StartsWith("invalid YAML", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("- just\n- a list\n", "expected a Kubernetes object")]
    [InlineData("just a string\n", "expected a Kubernetes object")]
    [InlineData("kind: Gateway\nmetadata: { name: x }\n", "apiVersion: Gateway x: is required")]
    [InlineData("a: 1\na: 2\n", "(line 2): a: duplicate key 'a'")]
    [InlineData("a: *nope\n", "(line 1): a: alias *nope names no anchor defined before it")]
    [InlineData("a: [1, 2\n", "invalid YAML")]
    public void ReadText_NotAnObject_IsAnErrorNotAnException(string text, string expected)
    {
        var set = ManifestReader.ReadText(text, "x.yaml");

        Assert.Contains(expected, Assert.Single(set.Errors).ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void ReadText_EmptyDocumentsAndCommentsOnly_AreIgnored()
    {
        var set = ManifestReader.ReadText("---\n# nothing\n---\n\n---\n" + Gateway + "\n---\n", "x.yaml");

        Assert.True(set.Succeeded);
        Assert.Single(set.Resources);
    }

    [Fact]
    public void ReadText_ListKind_ReadsItsItems()
    {
        const string text = """
            apiVersion: v1
            kind: List
            items:
              - apiVersion: v1
                kind: Service
                metadata: { name: a }
                spec: { ports: [ { port: 80 } ] }
              - apiVersion: v1
                kind: Service
                metadata: { name: b }
                spec: { ports: [ { port: "x" } ] }
            """;

        var set = ManifestReader.ReadText(text, "list.yaml");

        Assert.Equal("a", Assert.Single(set.Resources).Metadata.Name);
        Assert.Equal("items[1].spec.ports[0].port", Assert.Single(set.Errors).Field);
    }

    [Fact]
    public void ReadText_Json_IsYamlToo()
    {
        const string text = """{"apiVersion":"v1","kind":"Service","metadata":{"name":"a","namespace":"x"},"spec":{"ports":[{"name":"tcp","port":80}]}}""";

        var service = Assert.IsType<Service>(Assert.Single(ManifestReader.ReadText(text, "a.json").Resources));

        Assert.Equal(new ServicePort("tcp", 80, "TCP"), Assert.Single(service.Ports));
        Assert.Equal("x", service.Metadata.Namespace);
    }

    [Fact]
    public void ReadText_TcpRouteAndEndpointSlice_MapEveryField()
    {
        const string text = """
            apiVersion: gateway.networking.k8s.io/v1alpha2
            kind: TCPRoute
            metadata: { name: r, namespace: apps, generation: 4, creationTimestamp: "2024-01-02T03:04:05Z" }
            spec:
              parentRefs: [ { name: gw, namespace: infra, sectionName: foo, port: 8000 } ]
              rules:
                - backendRefs: [ { name: a, port: 80, weight: 7 }, { group: "", kind: Service, namespace: other, name: b, port: 81 } ]
            status:
              parents:
                - parentRef: { name: gw }
                  controllerName: example.com/other
                  conditions: [ { type: Accepted, status: "True", reason: Accepted, message: ok, observedGeneration: 3 } ]
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: { name: a-1, namespace: apps, labels: { kubernetes.io/service-name: a } }
            addressType: IPv4
            ports: [ { name: http, port: 8080 } ]
            endpoints:
              - addresses: [ 10.0.0.1 ]
                conditions: { ready: false }
              - addresses: [ 10.0.0.2 ]
            """;

        var set = ManifestReader.ReadText(text, "x.yaml");

        Assert.True(set.Succeeded, string.Join("; ", set.Errors));
        var route = set.Resources.OfType<TcpRoute>().Single();
        Assert.Equal(4, route.Metadata.Generation);
        Assert.Equal(new DateTimeOffset(2024, 1, 2, 3, 4, 5, TimeSpan.Zero), route.Metadata.CreationTimestamp);
        Assert.Equal("gateway.networking.k8s.io/v1alpha2", route.ApiVersion);
        Assert.Equal(new ParentReference(null, null, "infra", "gw", "foo", 8000), route.ParentRefs.Single());
        Assert.Equal(new BackendReference(null, null, null, "a", 80, 7), route.Rules[0].BackendRefs[0]);
        Assert.Equal(new BackendReference("", "Service", "other", "b", 81, null), route.Rules[0].BackendRefs[1]);
        Assert.Equal("example.com/other", route.ExistingParentStatuses.Single().ControllerName);
        var slice = set.Resources.OfType<EndpointSlice>().Single();
        Assert.Equal("a", slice.ServiceName);
        Assert.Equal([false, null], slice.Endpoints.Select(e => e.Ready));
    }

    [Fact]
    public void ReadPaths_Folder_ReadsManifestFilesInNameOrder_AndMissingPathIsAnError()
    {
        var folder = Directory.CreateTempSubdirectory("fsm-manifests-");
        try
        {
            File.WriteAllText(Path.Combine(folder.FullName, "b.yaml"), Gateway.Replace("name: gw", "name: second", StringComparison.Ordinal));
            File.WriteAllText(Path.Combine(folder.FullName, "a.yml"), Gateway);
            File.WriteAllText(Path.Combine(folder.FullName, "notes.txt"), "not a manifest");

            var set = ManifestReader.ReadPaths([folder.FullName, Path.Combine(folder.FullName, "missing.yaml")]);

            Assert.Equal(["gw", "second"], set.Resources.Select(r => r.Metadata.Name));
            var error = Assert.Single(set.Errors);
            Assert.EndsWith("missing.yaml: cannot read: no such file or folder", error.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }
}
