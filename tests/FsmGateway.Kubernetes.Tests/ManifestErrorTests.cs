using System.Text;
using FsmGateway.Kubernetes.Manifests;

namespace FsmGateway.Kubernetes.Tests;

/// <summary>Issue 14, class 2: every parser and mapper problem is a manifest error naming file, document, line and field.</summary>
public sealed class ManifestErrorTests
{
    private const string Service = """
        apiVersion: v1
        kind: Service
        metadata:
          name: svc
        spec:
          ports:
            - port: 80
        """;

    [Theory]
    [InlineData("port: 80", "port: .inf", 7, "spec.ports[0].port", "'.inf' is not a finite number")]
    [InlineData("port: 80", "port: -.Inf", 7, "spec.ports[0].port", "'-.Inf' is not a finite number")]
    [InlineData("port: 80", "port: .nan", 7, "spec.ports[0].port", "'.nan' is not a finite number")]
    [InlineData("port: 80", "port: 1e999", 7, "spec.ports[0].port", "'1e999' is not a finite number")]
    [InlineData("name: svc", "name: .nan", 4, "metadata.name", "'.nan' is not a finite number")]
    [InlineData("port: 80", "port: 99999999999", 7, "spec.ports[0].port", "99999999999 is out of range 1..65535")]
    [InlineData("port: 80", "port: -1", 7, "spec.ports[0].port", "-1 is out of range 1..65535")]
    [InlineData("port: 80", "port: 123456789012345678901234567890", 7, "spec.ports[0].port", "expected an integer, got the number 1.2345678901234568E+29")]
    [InlineData("  name: svc", "  name: [svc", 4, "metadata.name", "invalid YAML")]
    [InlineData("  name: svc", "  name: {svc", 4, "metadata.name", "invalid YAML")]
    [InlineData("  name: svc", "  name: \"svc", 4, "metadata", "invalid YAML")]
    [InlineData("  name: svc", "  name: svc\n  name: other", 5, "metadata.name", "duplicate key 'name'")]
    [InlineData("  name: svc", "  name: svc\n  ? [a]\n  : b", 5, "metadata", "a mapping key must be a string")]
    public void A_malformed_value_is_a_manifest_error_naming_file_document_line_and_field(string find, string replace, int line, string? field, string message)
    {
        var text = "# first\n---\n" + Service.Replace(find, replace, StringComparison.Ordinal);

        var set = ManifestReader.ReadText(text, "svc.yaml");

        var error = Assert.Single(set.Errors);
        Assert.Equal(("svc.yaml", 2, line + 2, field), (error.Source, error.Document, error.Line, error.Field));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("metadata: [a, b]", "metadata", "Service: expected an object, got a list")]
    [InlineData("metadata: just-text", "metadata", "Service: expected an object, got the string 'just-text'")]
    [InlineData("metadata: { name: [a] }", "metadata.name", "Service: expected a string, got a list")]
    [InlineData("kind: [Service]", "kind", "object svc: expected a string, got a list")]
    public void A_field_of_the_wrong_shape_is_a_manifest_error_not_an_exception(string replace, string field, string message)
    {
        var text = Service.Replace("metadata:\n  name: svc", "metadata: { name: svc }", StringComparison.Ordinal);
        text = replace.StartsWith("kind", StringComparison.Ordinal)
            ? text.Replace("kind: Service", replace, StringComparison.Ordinal)
            : text.Replace("metadata: { name: svc }", replace, StringComparison.Ordinal);

        var error = Assert.Single(ManifestReader.ReadText(text, "svc.yaml").Errors);

        Assert.Equal(field, error.Field);
        Assert.Equal(message, error.Message);
    }

    [Theory]
    [InlineData("Service", "v1", "Svc", "RFC 1035 label")]
    [InlineData("Service", "v1", "1svc", "RFC 1035 label")]
    [InlineData("Service", "v1", "a.b", "RFC 1035 label")]
    [InlineData("Namespace", "v1", "a.b", "RFC 1123 label")]
    [InlineData("Gateway", "gateway.networking.k8s.io/v1", "gw_1", "RFC 1123 subdomain")]
    [InlineData("Gateway", "gateway.networking.k8s.io/v1", "gw.", "RFC 1123 subdomain")]
    [InlineData("TCPRoute", "gateway.networking.k8s.io/v1alpha2", "\"a\\nb\"", "RFC 1123 subdomain")]
    [InlineData("EndpointSlice", "discovery.k8s.io/v1", "\"a\\u001b[31m\"", "RFC 1123 subdomain")]
    public void A_name_the_API_server_would_reject_is_a_manifest_error(string kind, string apiVersion, string name, string rule)
    {
        var text = $"apiVersion: {apiVersion}\nkind: {kind}\nmetadata:\n  name: {name}\n";

        var error = Assert.Single(ManifestReader.ReadText(text, "x.yaml").Errors);

        Assert.Equal(("metadata.name", 4), (error.Field, error.Line));
        Assert.Contains(rule, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.ToString());
        Assert.DoesNotContain('\u001b', error.ToString());
    }

    [Theory]
    [InlineData("sectionName: tcp", "sectionName: \"tcp\\nerror: forged\"", "spec.parentRefs[0].sectionName", "RFC 1123 subdomain")]
    [InlineData("namespace: infra", "namespace: Infra", "spec.parentRefs[0].namespace", "RFC 1123 label")]
    [InlineData("{ name: a, port: 80 }", "{ name: a, namespace: a_b, port: 80 }", "spec.rules[0].backendRefs[0].namespace", "RFC 1123 label")]
    public void A_reference_the_Gateway_API_schema_would_reject_is_a_manifest_error(string find, string replace, string field, string rule)
    {
        const string route = """
            apiVersion: gateway.networking.k8s.io/v1alpha2
            kind: TCPRoute
            metadata: { name: r }
            spec:
              parentRefs: [ { name: gw, namespace: infra, sectionName: tcp } ]
              rules: [ { backendRefs: [ { name: a, port: 80 } ] } ]
            """;

        var error = Assert.Single(ManifestReader.ReadText(route.Replace(find, replace, StringComparison.Ordinal), "r.yaml").Errors);

        Assert.Equal(field, error.Field);
        Assert.Contains(rule, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.ToString());
    }

    [Fact]
    public void A_listener_name_the_Gateway_API_schema_would_reject_is_a_manifest_error()
    {
        const string gateway = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: { name: gw }\nspec: { gatewayClassName: fsm, listeners: [ { name: TCP_1, port: 80, protocol: TCP } ] }\n";

        var error = Assert.Single(ManifestReader.ReadText(gateway, "gw.yaml").Errors);

        Assert.Equal(("spec.listeners[0].name", 4), (error.Field, error.Line));
    }

    [Fact]
    public void A_namespace_the_API_server_would_reject_is_a_manifest_error()
    {
        var error = Assert.Single(ManifestReader.ReadText(Service.Replace("  name: svc", "  name: svc\n  namespace: Apps", StringComparison.Ordinal), "x.yaml").Errors);

        Assert.Equal(("metadata.namespace", 5), (error.Field, error.Line));
        Assert.Contains("RFC 1123 label", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Valid_names_at_the_length_limits_are_read()
    {
        var text = $"apiVersion: v1\nkind: Service\nmetadata: {{ name: s{new string('a', 62)} }}\n---\n"
            + $"apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {{ name: {string.Join('.', Enumerable.Repeat(new string('b', 63), 4))[..253]} }}\nspec: {{ controllerName: x }}\n";

        var set = ManifestReader.ReadText(text, "x.yaml");

        Assert.True(set.Succeeded, string.Join("; ", set.Errors));
        Assert.Equal(2, set.Resources.Length);
    }

    [Fact]
    public void Bytes_that_are_not_utf8_are_a_manifest_error_naming_document_and_line()
    {
        var file = Path.GetTempFileName();
        try
        {
            var bytes = Encoding.UTF8.GetBytes("# x\n---\n" + Service.Replace("svc", "sv@", StringComparison.Ordinal));
            bytes[Array.IndexOf(bytes, (byte)'@')] = 0xff;
            File.WriteAllBytes(file, bytes);

            var error = Assert.Single(ManifestReader.ReadFile(file).Errors);

            Assert.Equal((2, 6), (error.Document, error.Line));
            Assert.Contains("byte 0xff at offset", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void A_utf8_byte_order_mark_is_allowed()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(file, [0xef, 0xbb, 0xbf, .. Encoding.UTF8.GetBytes(Service)]);

            Assert.True(ManifestReader.ReadFile(file).Succeeded);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Input_text_in_messages_is_escaped_so_it_cannot_forge_a_line()
    {
        var text = Service.Replace("port: 80", "port: \"80\\n2026-11-29 error: forged\"", StringComparison.Ordinal);

        var error = Assert.Single(ManifestReader.ReadText(text, "evil\nname.yaml").Errors);

        Assert.Equal("evil\\nname.yaml: document 1 (line 7): spec.ports[0].port: Service svc: expected an integer, got the string '80\\n2026-11-29 error: forged'", error.ToString());
    }
}
