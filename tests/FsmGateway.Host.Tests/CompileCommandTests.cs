using System.CommandLine;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using FsmGateway.Host.Cli;
using FsmGateway.Testing.Kubernetes;

namespace FsmGateway.Host.Tests;

public sealed class CompileCommandTests
{
    private static readonly string SeedPath = Path.Combine(AppContext.BaseDirectory, "seed", "tcp-routing.yaml");

    private static (int Exit, string Stdout, string Stderr) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var root = new RootCommand { CompileCommand.Create() };
        var exit = root.Parse(args).Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
        return (exit, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void Compile_SeedManifestInHttpbin_BothListenersCarryTheRouteToHttpbin()
    {
        var (exit, stdout, stderr) = Run("compile", "-o", "json", "-n", "httpbin", SeedPath);

        Assert.Equal(0, exit);
        Assert.Contains("skipped apps/v1 Deployment httpbin", stderr, StringComparison.Ordinal);
        var json = JsonNode.Parse(stdout)!;
        var gateway = json["resources"]!.AsArray().Single(r => (string?)r!["kind"] == "Gateway")!;
        Assert.Equal("httpbin", (string?)gateway["metadata"]!["namespace"]);
        foreach (var listener in gateway["status"]!["listeners"]!.AsArray())
        {
            Assert.Equal(1, (int)listener!["attachedRoutes"]!);
            Assert.Equal("True", Condition(listener, "Accepted"));
        }

        var route = json["resources"]!.AsArray().Single(r => (string?)r!["kind"] == "TCPRoute")!;
        Assert.Equal("gateway.networking.k8s.io/v1alpha2", (string?)route["apiVersion"]);
        var parents = route["status"]!["parents"]!.AsArray();
        Assert.Equal(2, parents.Count);
        Assert.All(parents, p => Assert.Equal(("True", "True"), (Condition(p!, "Accepted"), Condition(p!, "ResolvedRefs"))));

        var table = json["routingTable"]!["listeners"]!.AsArray();
        Assert.Equal([8000, 8001], table.Select(l => (int)l!["port"]!));
        Assert.All(table, l =>
        {
            var backend = Assert.Single(l!["backends"]!.AsArray())!;
            Assert.Equal(("httpbin/httpbin", 8080), ((string?)backend["service"], (int)backend["port"]!));
            Assert.Empty(backend["endpoints"]!.AsArray());
        });
    }

    [Fact]
    public void Compile_SeedWithTheBackendPoliciesSample_ShowsEachPolicysStatusAndTheMergedBackendPolicy()
    {
        var (exit, stdout, stderr) = Run("compile", "-o", "json", "-n", "httpbin", SeedPath, RepoPaths.Of("samples/backend-policies/policies.yaml"));

        Assert.True(exit == 0, stderr);
        Assert.DoesNotContain("unknown field", stderr, StringComparison.Ordinal);
        var json = JsonNode.Parse(stdout)!;
        var policies = json["resources"]!.AsArray().Where(r => ((string?)r!["kind"])!.EndsWith("Policy", StringComparison.Ordinal)).ToList();
        Assert.Equal(
            ["gateway.flomesh.io/v1alpha2 HealthCheckPolicy health-check-policy-sample", "gateway.flomesh.io/v1alpha2 BackendLBPolicy lb-policy-sample", "gateway.fsmgateway.io/v1alpha1 BackendTrafficPolicy tcp-route-limits"],
            policies.Select(p => $"{p!["apiVersion"]} {p["kind"]} {p["metadata"]!["name"]}"));
        Assert.All(policies, p =>
        {
            var ancestor = Assert.Single(p!["status"]!["ancestors"]!.AsArray())!;
            Assert.Equal("httpbin/simple-fsm-gateway", $"{ancestor["ancestorRef"]!["namespace"]}/{ancestor["ancestorRef"]!["name"]}");
            Assert.Equal("True", Condition(ancestor, "Accepted"));
        });

        Assert.All(json["routingTable"]!["listeners"]!.AsArray(), l =>
        {
            var policy = Assert.Single(l!["backends"]!.AsArray())!["policy"]!;
            Assert.Equal("LeastRequest", (string?)policy["loadBalancer"]);
            Assert.Equal(("Http", "/status/200", "10s"), ((string?)policy["activeHealthCheck"]!["protocol"], (string?)policy["activeHealthCheck"]!["path"], (string?)policy["activeHealthCheck"]!["interval"]));
            Assert.Equal((10000, 2000, "3s"), ((int)policy["maxConnections"]!, (int)policy["maxConnectionsPerEndpoint"]!, (string?)policy["connectTimeout"]));
        });
    }

    [Fact]
    public void Compile_SeedWithTheClientPoliciesSample_ShowsEachObjectsStatusAndTheMergedClientPolicyPerListener()
    {
        var (exit, stdout, stderr) = Run("compile", "-o", "json", "-n", "httpbin", SeedPath, RepoPaths.Of("samples/client-policies/policies.yaml"));

        Assert.True(exit == 0, stderr);
        Assert.DoesNotContain("unknown field", stderr, StringComparison.Ordinal);
        var json = JsonNode.Parse(stdout)!;
        var objects = json["resources"]!.AsArray().Where(r => (string?)r!["kind"] is not ("Gateway" or "TCPRoute" or "GatewayClass")).ToList();
        Assert.Equal(
        [
            "gateway.fsmgateway.io/v1alpha1 ClientTrafficPolicy bar-clients", "gateway.fsmgateway.io/v1alpha1 ClientTrafficPolicy gateway-clients",
            "extension.gateway.flomesh.io/v1alpha1 ListenerFilter concurrency-limit", "extension.gateway.flomesh.io/v1alpha1 ListenerFilter ip-restriction",
            "extension.gateway.flomesh.io/v1alpha1 ConcurrencyLimit concurrency-limit-config", "extension.gateway.flomesh.io/v1alpha1 IPRestriction ip-restriction-config",
        ],
            objects.Select(p => $"{p!["apiVersion"]} {p["kind"]} {p["metadata"]!["name"]}"));
        Assert.All(objects, o =>
        {
            var status = o!["status"]!;
            var conditions = status["ancestors"] is JsonArray ancestors ? Assert.Single(ancestors)! : status;
            Assert.Equal("True", Condition(conditions, "Accepted"));
        });

        var listeners = json["routingTable"]!["listeners"]!.AsArray();
        var foo = listeners[0]!["client"]!;
        var bar = listeners[1]!["client"]!;
        Assert.Equal(["10.0.0.0/8", "192.168.0.0/16", "127.0.0.1/32", "fd00::/8"], foo["listenerFilters"]![0]!["allowed"]!.AsArray().Select(a => (string?)a));
        Assert.Equal((5000, "900s"), ((int)foo["connectionLimit"]!["max"]!, (string?)foo["idleTimeout"]));
        Assert.Equal(100, (int)bar["listenerFilters"]![0]!["maxConnections"]!);
        Assert.Equal((5000, "3600s", 4194304L, 262144L), ((int)bar["connectionLimit"]!["max"]!, (string?)bar["maxConnectionDuration"], (long)bar["downloadBandwidth"]!["bytesPerSecond"]!, (long)bar["downloadBandwidth"]!["burst"]!));
    }

    [Fact]
    public void Compile_Yaml_IsTheDefaultAndDeterministic()
    {
        var first = Run("compile", "-n", "httpbin", SeedPath);
        var second = Run("compile", "--namespace", "httpbin", SeedPath);

        Assert.Equal(0, first.Exit);
        Assert.StartsWith("resources:\n- apiVersion: gateway.networking.k8s.io/v1\n  kind: Gateway\n", first.Stdout, StringComparison.Ordinal);
        Assert.Contains("      status: \"True\"\n", first.Stdout, StringComparison.Ordinal);
        Assert.Equal(first.Stdout, second.Stdout);
    }

    [Fact]
    public async Task Compile_FifoDeviceOrLinkLoop_IsAnErrorNamingTheFile_NeverAReadThatBlocks()
    {
        var folder = Directory.CreateTempSubdirectory("fsm-compile-special-");
        try
        {
            var fifo = Path.Combine(folder.FullName, "pipe.yaml");
            using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [fifo]))
            {
                await mkfifo.WaitForExitAsync();
                Assert.Equal(0, mkfifo.ExitCode);
            }

            var zero = Path.Combine(folder.FullName, "zero.yaml");
            File.CreateSymbolicLink(zero, "/dev/zero");
            var loop = Path.Combine(folder.FullName, "loop.yaml");
            File.CreateSymbolicLink(loop, loop);

            // On the old reader, opening the FIFO blocked for ever (no writer ever comes): run where a hang fails the test.
            var compile = Task.Run(() => Run("compile", fifo, zero, loop));
            Assert.Same(compile, await Task.WhenAny(compile, Task.Delay(TimeSpan.FromSeconds(60))));
            var (exit, _, stderr) = await compile;

            Assert.Equal(1, exit);
            Assert.Contains($"error: {fifo}: not a regular file (a FIFO)", stderr, StringComparison.Ordinal);
            Assert.Contains($"error: {zero}: not a regular file (a character device)", stderr, StringComparison.Ordinal);
            Assert.Contains($"error: {loop}: ", stderr, StringComparison.Ordinal);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void Compile_OtherControllerName_LeavesTheImplicitClassOurs()
    {
        var (exit, stdout, _) = Run("compile", "-o", "json", "--controller-name", "example.com/mine", SeedPath);

        Assert.Equal(0, exit);
        Assert.Contains("controller 'example.com/mine'", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_MalformedManifest_ExitsNonZeroNamingFileDocumentAndField()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, File.ReadAllText(SeedPath).Replace("port: 8001", "port: high", StringComparison.Ordinal));

            var (exit, stdout, stderr) = Run("compile", file);

            Assert.NotEqual(0, exit);
            Assert.Empty(stdout);
            Assert.Contains($"error: {file}: document 1 (line 17): spec.listeners[1].port: Gateway simple-fsm-gateway: expected an integer, got the string 'high'", stderr, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData("apiVersion: v1\nkind: Service\nmetadata:\n  name: [foo\nspec:\n  ports:\n    - port: 80\n", "(line 4): metadata.name: invalid YAML")]
    [InlineData("apiVersion: v1\nkind: Service\nmetadata: { name: a }\nspec: { ports: [ { port: 1e999 } ] }\n", "(line 4): spec.ports[0].port: '1e999' is not a finite number")]
    [InlineData("apiVersion: v1\nkind: Service\nmetadata: [a]\n", "(line 3): metadata: Service: expected an object, got a list")]
    [InlineData("apiVersion: v1\nkind: Service\nmetadata: &m { name: x, labels: *m }\n", "(line 3): metadata.labels: alias *m refers to a node that contains it")]
    public void Compile_InputTheParserOrMapperThrewOn_IsOneLocatedErrorAndNoStackTrace(string text, string expected)
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, text);

            var (exit, stdout, stderr) = Run("compile", file);

            Assert.Equal(1, exit);
            Assert.Empty(stdout);
            Assert.Contains($"error: {file}: document 1 {expected}", stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("xception", stderr, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Compile_SnapshotSampleFolder_CompilesAsOneConfiguration()
    {
        var (exit, stdout, stderr) = Run("compile", "-o", "json", "-n", "shop", RepoPaths.Of("samples/SnapshotTests/manifests"));

        Assert.True(exit == 0, stderr);
        Assert.DoesNotContain("error", stderr, StringComparison.Ordinal);
        Assert.Contains("staging", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_OneObjectDefinedDifferentlyInTwoFiles_ExitsOneNamingBothLocations()
    {
        var folder = Directory.CreateTempSubdirectory("fsm-compile-dup-");
        try
        {
            var seed = File.ReadAllText(SeedPath);
            File.WriteAllText(Path.Combine(folder.FullName, "a.yaml"), seed);
            File.WriteAllText(Path.Combine(folder.FullName, "b.yaml"), seed.Replace("port: 8001", "port: 8002", StringComparison.Ordinal));

            var (exit, stdout, stderr) = Run("compile", folder.FullName);

            Assert.Equal(1, exit);
            Assert.Empty(stdout);
            Assert.Contains($"error: {Path.Combine(folder.FullName, "b.yaml")}: document 1 (line 6): metadata.name: Gateway default/simple-fsm-gateway is already defined differently at {Path.Combine(folder.FullName, "a.yaml")}: document 1 (line 6)", stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void Compile_ReportsSkippedKindsAndUnknownFieldsAsLocatedNotes()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, File.ReadAllText(SeedPath).Replace("    - name: simple-fsm-gateway\n", "    - name: simple-fsm-gateway\n      sectionNmae: tcp\n", StringComparison.Ordinal) + "\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: { name: web }\n");

            var (exit, _, stderr) = Run("compile", "-n", "httpbin", file);

            Assert.Equal(0, exit);
            Assert.Matches($@"note: {Regex.Escape(file)}: document \d+ \(line \d+\): spec\.parentRefs\[0\]\.sectionNmae: unknown field, not in the TCPRoute schema; ignored", stderr);
            Assert.Matches($@"note: {Regex.Escape(file)}: document \d+ \(line \d+\): skipped gateway\.networking\.k8s\.io/v1 HTTPRoute web: not a kind FsmGateway reads", stderr);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Compile_MissingPath_ExitsNonZero()
    {
        var (exit, _, stderr) = Run("compile", "/nonexistent/manifest.yaml");

        Assert.Equal(1, exit);
        Assert.Contains("/nonexistent/manifest.yaml: cannot read: no such file or folder", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_UnknownOutputFormat_IsRejectedByTheParser()
    {
        var (exit, _, stderr) = Run("compile", "-o", "xml", SeedPath);

        Assert.NotEqual(0, exit);
        Assert.Contains("xml", stderr, StringComparison.Ordinal);
    }

    private static string? Condition(JsonNode owner, string type) =>
        (string?)owner["conditions"]!.AsArray().Single(c => (string?)c!["type"] == type)!["status"];
}
