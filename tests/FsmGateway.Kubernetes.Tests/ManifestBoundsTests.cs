using System.Text;
using FsmGateway.Kubernetes.Manifests;
using FsmGateway.Resources;

namespace FsmGateway.Kubernetes.Tests;

/// <summary>Issue 14, class 1: no manifest can overflow the stack or expand without bound; each bound is a located error.</summary>
public sealed class ManifestBoundsTests
{
    private const string ServiceHead = "apiVersion: v1\nkind: Service\nmetadata: { name: a }\n";

    [Fact]
    public void A_self_referencing_alias_is_a_manifest_error_not_a_stack_overflow()
    {
        var set = ManifestReader.ReadText("apiVersion: v1\nkind: Service\nmetadata: &m {name: x, labels: *m}\n", "alias.yaml");

        var error = Assert.Single(set.Errors);
        Assert.Equal("alias.yaml: document 1 (line 3): metadata.labels: alias *m refers to a node that contains it", error.ToString());
    }

    [Theory]
    [InlineData("[", "]")]
    [InlineData("{a: ", "}")]
    [InlineData("- ", "")]
    public void Nesting_deeper_than_the_bound_is_a_manifest_error_at_its_line(string open, string close)
    {
        var text = ServiceHead + (close.Length == 0 ? "spec:\n  " : "spec: ") + string.Concat(Enumerable.Repeat(open, 100_000)) + "x" + string.Concat(Enumerable.Repeat(close, 100_000)) + "\n";

        var error = Assert.Single(ManifestReader.ReadText(text, "deep.yaml").Errors);

        Assert.Contains($"nested more than {YamlToJson.MaxDepth} levels deep", error.Message, StringComparison.Ordinal);
        Assert.StartsWith("spec", error.Field, StringComparison.Ordinal);
        Assert.InRange(error.Line!.Value, 4, 4 + YamlToJson.MaxDepth + 1);
    }

    [Fact]
    public void Nesting_within_the_bound_is_read()
    {
        var text = ServiceHead + "spec: { ports: [ { port: 80 } ], x: " + string.Concat(Enumerable.Repeat("[", YamlToJson.MaxDepth - 3)) + string.Concat(Enumerable.Repeat("]", YamlToJson.MaxDepth - 3)) + " }\n";

        var set = ManifestReader.ReadText(text, "ok.yaml");

        Assert.True(set.Succeeded, string.Join("; ", set.Errors));
    }

    [Fact]
    public void An_alias_billion_laughs_stops_at_the_node_budget()
    {
        // Six levels of ten aliases each: a million nodes from 80 lines.
        var text = new StringBuilder(ServiceHead).Append("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
        for (var i = 1; i <= 6; i++)
        {
            text.Append($"l{i}: &l{i} [").AppendJoin(", ", Enumerable.Repeat($"*l{i - 1}", 10)).Append("]\n");
        }

        var error = Assert.Single(ManifestReader.ReadText(text.ToString(), "laughs.yaml").Errors);

        Assert.Contains($"more than {YamlToJson.MaxNodes} nodes", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, error.Document);
    }

    [Fact]
    public void Many_alias_documents_in_one_file_stop_at_the_files_alias_budget()
    {
        // Each document copies about 123,000 nodes through aliases, under the per-document budget; a thousand of them
        // would cost about 10^8 node copies. The file's budget stops the second document, and every later one at its
        // first alias, so the read costs what the text does.
        var document = new StringBuilder(ServiceHead).Append("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
        for (var i = 1; i <= 4; i++)
        {
            document.Append($"l{i}: &l{i} [").AppendJoin(", ", Enumerable.Repeat($"*l{i - 1}", 10)).Append("]\n");
        }

        var text = string.Join("---\n", Enumerable.Repeat(document.ToString(), 1_000));

        var errors = ManifestReader.ReadText(text, "laughs.yaml").Errors;

        Assert.Equal(999, errors.Length);
        Assert.All(errors, e => Assert.Contains($"the file's aliases repeat more than {YamlToJson.MaxAliasNodesPerFile} nodes", e.Message, StringComparison.Ordinal));
        Assert.Equal(2, errors[0].Document);
    }

    [Fact]
    public void Aliases_within_the_budget_are_expanded_as_kubectl_does()
    {
        const string text = """
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: { name: a-1, labels: &l { kubernetes.io/service-name: a } }
            addressType: IPv4
            endpoints: [ &e { addresses: [ 10.0.0.1 ] }, *e ]
            copy: *l
            """;

        var set = ManifestReader.ReadText(text, "a.yaml");

        Assert.True(set.Succeeded, string.Join("; ", set.Errors));
        var slice = Assert.IsType<EndpointSlice>(Assert.Single(set.Resources));
        Assert.Equal("a", slice.ServiceName);
        Assert.Equal(["10.0.0.1", "10.0.0.1"], slice.Endpoints.SelectMany(e => e.Addresses));
    }

    [Fact]
    public void An_alias_may_not_name_an_anchor_of_another_document()
    {
        var set = ManifestReader.ReadText("a: &x 1\n---\n" + ServiceHead + "b: *x\n", "x.yaml");

        Assert.Contains(set.Errors, e => e.Document == 2 && e.Line == 6 && e.Message == "alias *x names no anchor defined before it");
    }

    [Fact]
    public void A_file_larger_than_the_cap_is_a_manifest_error_and_is_not_read_whole()
    {
        var file = Path.GetTempFileName();
        try
        {
            using (var stream = File.Create(file))
            {
                var line = Encoding.UTF8.GetBytes("# a comment line that pads the file out well past the cap......\n");
                for (long written = 0; written <= ManifestReader.MaxFileBytes; written += line.Length)
                {
                    stream.Write(line);
                }
            }

            var set = ManifestReader.ReadFile(file);

            var error = Assert.Single(set.Errors);
            Assert.StartsWith($"{file}: the file is ", error.ToString(), StringComparison.Ordinal);
            Assert.EndsWith("over the limit of 16 MiB for one manifest file", error.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }
}
