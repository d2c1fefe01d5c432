using FsmGateway.Kubernetes.Manifests;
using FsmGateway.Resources;
using FsmGateway.Testing.Kubernetes;

namespace FsmGateway.Kubernetes.Tests;

/// <summary>
/// Issue 14, class 2 (the same object defined twice) and class 8 (what the reader ignores is reported, located, as data
/// for both <c>compile</c> and <c>run</c>).
/// </summary>
public sealed class ManifestDuplicateAndNoteTests
{
    private const string Service = """
        apiVersion: v1
        kind: Service
        metadata: { name: db }
        spec: { ports: [ { port: 5432 } ] }
        """;

    [Fact]
    public void The_same_object_defined_differently_is_an_error_at_the_later_definition_naming_both()
    {
        var text = Service + "\n---\n" + Service.Replace("5432", "5433", StringComparison.Ordinal);

        var set = ManifestReader.ReadText(text, "db.yaml");

        var service = Assert.IsType<Service>(Assert.Single(set.Resources));
        Assert.Equal(5432, service.Ports[0].Port);
        var error = Assert.Single(set.Errors);
        Assert.Equal("db.yaml: document 2 (line 8): metadata.name: Service default/db is already defined differently at db.yaml: document 1 (line 3); an object may be defined once (that definition is kept)", error.ToString());
    }

    [Fact]
    public void The_same_object_defined_differently_in_two_files_is_an_error_naming_both_files()
    {
        var folder = Directory.CreateTempSubdirectory("fsm-dup-");
        try
        {
            File.WriteAllText(Path.Combine(folder.FullName, "a.yaml"), Service);
            File.WriteAllText(Path.Combine(folder.FullName, "b.yaml"), "# other\n---\n" + Service.Replace("5432", "5433", StringComparison.Ordinal));

            var set = ManifestReader.ReadPaths([folder.FullName]);

            var error = Assert.Single(set.Errors);
            Assert.Equal((Path.Combine(folder.FullName, "b.yaml"), 2, 5), (error.Source, error.Document, error.Line));
            Assert.Contains($"already defined differently at {Path.Combine(folder.FullName, "a.yaml")}: document 1 (line 3)", error.Message, StringComparison.Ordinal);
            Assert.Single(set.Resources);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void An_identical_duplicate_is_tolerated_with_a_note()
    {
        var set = ManifestReader.ReadText(Service + "\n---\n" + Service + "\n---\n" + Service.Replace("db", "other", StringComparison.Ordinal), "db.yaml");

        Assert.True(set.Succeeded);
        Assert.Equal(["db", "other"], set.Resources.Select(r => r.Metadata.Name));
        Assert.Equal("db.yaml: document 2 (line 8): Service default/db is defined again, identically (first at db.yaml: document 1 (line 3)); one copy is used", Assert.Single(set.Notes));
    }

    [Fact]
    public void The_same_name_in_another_namespace_or_kind_is_another_object()
    {
        var text = Service + "\n---\n" + Service.Replace("name: db", "name: db, namespace: other", StringComparison.Ordinal)
            + "\n---\napiVersion: v1\nkind: Namespace\nmetadata: { name: db }\n";

        var set = ManifestReader.ReadText(text, "db.yaml");

        Assert.True(set.Succeeded, string.Join("; ", set.Errors));
        Assert.Equal(3, set.Resources.Length);
    }

    [Fact]
    public void The_snapshot_sample_folder_reads_as_one_configuration()
    {
        var set = ManifestReader.ReadPaths([RepoPaths.Of("samples/SnapshotTests/manifests")], "shop");

        Assert.True(set.Succeeded, string.Join("\n", set.Errors));
    }

    [Fact]
    public void An_unknown_field_is_a_located_note_and_the_object_is_still_read()
    {
        const string text = """
            apiVersion: gateway.networking.k8s.io/v1alpha2
            kind: TCPRoute
            metadata: { name: r, lables: { a: b } }
            spec:
              parentRefs:
                - name: gw
                  sectionNmae: foo
              rules:
                - backendRefs: [ { name: a, port: 80, wieght: 2 } ]
              hostnames: [ a.example.com ]
            """;

        var set = ManifestReader.ReadText(text, "r.yaml");

        Assert.True(set.Succeeded);
        Assert.Single(set.Resources);
        Assert.Equal(
        [
            "r.yaml: document 1 (line 3): metadata.lables: unknown field, not in the TCPRoute schema; ignored",
            "r.yaml: document 1 (line 7): spec.parentRefs[0].sectionNmae: unknown field, not in the TCPRoute schema; ignored",
            "r.yaml: document 1 (line 9): spec.rules[0].backendRefs[0].wieght: unknown field, not in the TCPRoute schema; ignored",
            "r.yaml: document 1 (line 10): spec.hostnames: unknown field, not in the TCPRoute schema; ignored",
        ], set.Notes, StringComparer.Ordinal);
    }

    [Fact]
    public void Unknown_fields_in_list_items_name_the_item()
    {
        const string text = """
            apiVersion: v1
            kind: List
            items:
              - apiVersion: v1
                kind: Service
                metadata: { name: a }
                spec: { ports: [ { port: 80, prot: TCP } ] }
            """;

        var note = Assert.Single(ManifestReader.ReadText(text, "l.yaml").Notes);

        Assert.Equal("l.yaml: document 1 (line 7): items[0].spec.ports[0].prot: unknown field, not in the Service schema; ignored", note);
    }

    public static TheoryData<string> RepositoryManifests =>
    [
        .. Directory.EnumerateFiles(RepoPaths.Of("tests/FsmGateway.Routing.Tests/Scenarios"), "*.yaml"),
        .. Directory.EnumerateFiles(RepoPaths.Of("samples"), "*.yaml", SearchOption.AllDirectories),
        .. Directory.EnumerateFiles(RepoPaths.Of("deploy"), "*.yaml", SearchOption.AllDirectories),
    ];

    [Theory]
    [MemberData(nameof(RepositoryManifests))]
    public void The_repository_s_own_manifests_have_no_unknown_fields(string file)
    {
        var set = ManifestReader.ReadFile(file);

        Assert.DoesNotContain(set.Notes, n => n.Contains("unknown field", StringComparison.Ordinal));
    }
}
