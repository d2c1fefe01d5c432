using System.Collections.Concurrent;
using FsmGateway.Configuration;
using FsmGateway.Kubernetes.Manifests;
using FsmGateway.Resources;

namespace FsmGateway.Kubernetes.Tests;

/// <summary>Real files in a temporary folder, real file-system notifications, generous time bounds.</summary>
public sealed class ManifestFileSourceTests : IDisposable
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(5);
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("fsm-source-");
    private readonly BlockingCollection<ConfigEvent> _events = [];

    public void Dispose()
    {
        _events.Dispose();
        _folder.Delete(recursive: true);
    }

    private string PathOf(string name) => Path.Combine(_folder.FullName, name);

    private static string ServiceYaml(string name, int port = 80) => $"""
        apiVersion: v1
        kind: Service
        metadata:
          name: {name}
        spec:
          ports:
            - port: {port}
        """;

    private ManifestFileSource Start(params string[] paths)
    {
        var source = new ManifestFileSource(paths.Length == 0 ? [_folder.FullName] : paths, settle: TimeSpan.FromMilliseconds(100));
        source.Events.Subscribe(_events.Add);
        return source;
    }

    private ConfigEvent.SourceReset Next()
    {
        Assert.True(_events.TryTake(out var e, Guard), "no event within the guard time");
        return Assert.IsType<ConfigEvent.SourceReset>(e);
    }

    private static string[] Names(ConfigEvent.SourceReset reset) =>
        [.. reset.Resources.Select(r => $"{r.Metadata.Name}:{((Service)r).Ports[0].Port}")];

    [Fact]
    public void Subscribe_SendsEverythingInTheFolderAsOneReset()
    {
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a"));
        File.WriteAllText(PathOf("b.yml"), ServiceYaml("b"));
        File.WriteAllText(PathOf("readme.txt"), "not a manifest");
        using var source = Start();

        Assert.Equal(["a:80", "b:80"], Names(Next()));
    }

    [Fact]
    public void EditAddRemove_EachBecomesAnEventWithinASecondOrSo()
    {
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a"));
        using var source = Start();
        Next();

        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a", 81));
        Assert.Equal(["a:81"], Names(Next()));

        File.WriteAllText(PathOf("b.yaml"), ServiceYaml("b"));
        Assert.Equal(["a:81", "b:80"], Names(Next()));

        File.Delete(PathOf("a.yaml"));
        Assert.Equal(["b:80"], Names(Next()));
    }

    [Fact]
    public void AtomicRename_OverTheWatchedFile_IsSeen()
    {
        var target = PathOf("svc.yaml");
        File.WriteAllText(target, ServiceYaml("a"));
        using var source = Start(target);
        Next();

        // What editors and kubectl-style tools do: write a temporary file, then rename it over the original.
        var temp = PathOf(".svc.yaml.tmp");
        File.WriteAllText(temp, ServiceYaml("a", 90));
        File.Move(temp, target, overwrite: true);

        Assert.Equal(["a:90"], Names(Next()));
    }

    [Fact]
    public void BrokenFile_KeepsTheObjectsItHeldBefore_AndReportsTheError_UntilItParsesAgain()
    {
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a"));
        File.WriteAllText(PathOf("b.yaml"), ServiceYaml("b"));
        using var source = Start();
        Next();

        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a").Replace("port: 80", "port: eighty", StringComparison.Ordinal));
        File.WriteAllText(PathOf("b.yaml"), ServiceYaml("b", 82));

        Assert.Equal(["a:80", "b:82"], Names(Next()));
        var error = Assert.Single(source.Errors);
        Assert.Equal(PathOf("a.yaml"), error.Source);
        Assert.Equal("spec.ports[0].port", error.Field);

        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a", 83));
        Assert.Equal(["a:83", "b:82"], Names(Next()));
        Assert.Empty(source.Errors);
    }

    [Fact]
    public void SecondSubscriber_GetsTheCurrentContents()
    {
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a"));
        using var source = Start();
        Next();

        var late = new BlockingCollection<ConfigEvent>();
        using var subscription = source.Events.Subscribe(late.Add);

        Assert.True(late.TryTake(out var e, Guard));
        Assert.Equal(["a:80"], Names(Assert.IsType<ConfigEvent.SourceReset>(e)));
        late.Dispose();
    }

    [Fact]
    public void NamedFileRemovedThenRecreated_KeepsItsObjectsMeanwhile()
    {
        var file = PathOf("svc.yaml");
        File.WriteAllText(file, ServiceYaml("a"));
        using var source = Start(file);
        Next();

        File.Delete(file);
        Assert.False(_events.TryTake(out _, TimeSpan.FromSeconds(1)), "a missing named file must not delete its objects");
        Assert.Contains("cannot read", Assert.Single(source.Errors).Message, StringComparison.Ordinal);

        File.WriteAllText(file, ServiceYaml("a", 85));
        Assert.Equal(["a:85"], Names(Next()));
    }

    [Fact]
    public void Dispose_Twice_IsHarmless_AndLaterFileChangesSendNothing()
    {
        var source = Start();
        Next();

        source.Dispose();
        source.Dispose();

        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a"));
        Assert.False(_events.TryTake(out _, TimeSpan.FromSeconds(1)), "a disposed source no longer watches");
    }

    [Fact]
    public void TouchWithoutChange_SendsNothing()
    {
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a"));
        using var source = Start();
        Next();

        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a"));

        Assert.False(_events.TryTake(out _, TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public void ObjectsWithoutNamespace_GoIntoTheGivenOne()
    {
        File.WriteAllText(PathOf("a.yaml"), ServiceYaml("a"));
        using var source = new ManifestFileSource([_folder.FullName], "httpbin");
        using var _ = source.Events.Subscribe(_events.Add);

        Assert.Equal("httpbin", Next().Resources.Single().Metadata.Namespace);
    }
}
