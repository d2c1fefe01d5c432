using FsmGateway.Kubernetes.Controller;
using FsmGateway.Testing.Kubernetes;
using k8s.Models;
using YamlDotNet.RepresentationModel;

namespace FsmGateway.Kubernetes.Tests.Deploy;

/// <summary>
/// The optional Prometheus Operator objects in <c>deploy/monitoring/</c> (not applied by <c>kubectl apply -f deploy/</c>)
/// select the pods that serve metrics, on a port those pods name, at the path the pods' annotations give.
/// </summary>
public sealed class MonitoringManifestTests
{
    private static readonly string Folder = Path.Combine(RepoPaths.Root, "deploy", "monitoring");

    [Fact]
    public void Monitors_SelectTheControllerAndTheDataPlanes_OnTheirAdminPortAtMetrics()
    {
        var monitors = Documents().Where(static d => d.Kind is "PodMonitor" or "ServiceMonitor").ToList();
        Assert.Contains(monitors, static m => m.Kind == "PodMonitor");
        Assert.Contains(monitors, static m => m.Kind == "ServiceMonitor");

        var controllerPod = ControllerDeployment().Spec.Template;
        var controllerLabels = controllerPod.Metadata.Labels.ToDictionary();
        var dataPlaneLabels = new Dictionary<string, string> { [DataPlaneManifests.AppLabel] = DataPlaneManifests.AppValue };
        Assert.Contains(monitors, m => m.Kind == "PodMonitor" && Selects(m.Selector, controllerLabels));
        Assert.Contains(monitors, m => m.Kind == "PodMonitor" && Selects(m.Selector, dataPlaneLabels));

        var annotations = controllerPod.Metadata.Annotations;
        Assert.Equal("true", annotations["prometheus.io/scrape"]);
        var adminPort = Assert.Single(controllerPod.Spec.Containers[0].Ports, static p => p.Name == "admin");
        Assert.Equal(adminPort.ContainerPort.ToString(System.Globalization.CultureInfo.InvariantCulture), annotations["prometheus.io/port"]);
        foreach (var monitor in monitors)
        {
            Assert.All(monitor.Endpoints, e =>
            {
                Assert.Equal("admin", e.Port);
                Assert.Equal(annotations["prometheus.io/path"], e.Path);
                Assert.NotEmpty(monitor.Endpoints);
            });
        }
    }

    [Fact]
    public void ServiceMonitor_SelectsAServiceThatSelectsTheController()
    {
        var documents = Documents().ToList();
        var monitor = Assert.Single(documents, static d => d.Kind == "ServiceMonitor");
        var service = Assert.Single(documents, d => d.Kind == "Service" && Selects(monitor.Selector, d.Labels));
        Assert.True(Selects(service.Selector, ControllerDeployment().Spec.Template.Metadata.Labels.ToDictionary()), "the metrics Service does not select the controller's pods");
        Assert.Contains("admin", service.PortNames);
    }

    private static V1Deployment ControllerDeployment() =>
        k8s.KubernetesYaml.LoadAllFromString(File.ReadAllText(Path.Combine(RepoPaths.Root, "deploy", "20-controller.yaml"))).OfType<V1Deployment>().Single();

    private static bool Selects(IReadOnlyDictionary<string, string> selector, IReadOnlyDictionary<string, string> labels) =>
        selector.Count > 0 && selector.All(s => labels.TryGetValue(s.Key, out var v) && v == s.Value);

    private static IEnumerable<Document> Documents()
    {
        var files = Directory.GetFiles(Folder, "*.yaml");
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            var stream = new YamlStream();
            using var reader = new StringReader(File.ReadAllText(file));
            stream.Load(reader);
            foreach (var document in stream.Documents)
            {
                var root = (YamlMappingNode)document.RootNode;
                var kind = Scalar(root, "kind");
                var spec = (YamlMappingNode)root["spec"];
                var metadata = (YamlMappingNode)root["metadata"];
                Assert.False(string.IsNullOrEmpty(Scalar(metadata, "name")), $"{file}: a {kind} without a name");
                Assert.False(string.IsNullOrEmpty(Scalar(metadata, "namespace")), $"{file}: a {kind} without a namespace");
                var selector = kind == "Service" ? Map(spec, "selector") : Map(Child(spec, "selector"), "matchLabels");
                var endpoints = kind switch
                {
                    "PodMonitor" => Items(spec, "podMetricsEndpoints"),
                    "ServiceMonitor" => Items(spec, "endpoints"),
                    _ => [],
                };
                yield return new Document(
                    kind,
                    Map(metadata, "labels"),
                    selector,
                    [.. endpoints.Select(static e => (Scalar(e, "port"), Scalar(e, "path")))],
                    [.. Items(spec, "ports").Select(static p => Scalar(p, "name"))]);
            }
        }
    }

    private static string? Scalar(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var value) ? ((YamlScalarNode)value).Value : null;

    private static YamlMappingNode? Child(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var value) ? value as YamlMappingNode : null;

    private static Dictionary<string, string> Map(YamlMappingNode? node, string key) =>
        node is not null && Child(node, key) is { } map
            ? map.Children.ToDictionary(static c => ((YamlScalarNode)c.Key).Value!, static c => ((YamlScalarNode)c.Value).Value!)
            : [];

    private static IEnumerable<YamlMappingNode> Items(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var value) && value is YamlSequenceNode list ? list.Children.Cast<YamlMappingNode>() : [];

    private sealed record Document(
        string? Kind,
        IReadOnlyDictionary<string, string> Labels,
        IReadOnlyDictionary<string, string> Selector,
        IReadOnlyList<(string? Port, string? Path)> Endpoints,
        IReadOnlyList<string?> PortNames);
}
