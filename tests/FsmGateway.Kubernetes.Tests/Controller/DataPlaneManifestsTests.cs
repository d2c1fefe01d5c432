using System.Text.Json.Nodes;
using FsmGateway.Kubernetes.Controller;
using k8s;
using Newtonsoft.Json.Linq;
using Snapshooter;
using Snapshooter.Xunit;

namespace FsmGateway.Kubernetes.Tests.Controller;

/// <summary>
/// What the controller applies for a Gateway, built by the pure <see cref="DataPlaneManifests"/>: objects in, JSON out,
/// compared with the snapshots in <c>__snapshots__/</c> (CI runs with <c>SNAPSHOOTER_STRICT_MODE=true</c>).
/// </summary>
public sealed class DataPlaneManifestsTests
{
    /// <summary>What the controller provisions by default: pods on the secured config stream (ADR 0010).</summary>
    private static readonly ProvisioningOptions Options = new("example.com/fsm-gateway:1.0", 1, "flomesh.io/gateway-controller", TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(5))
    {
        ControllerAddress = "https://fsm-gateway-controller.fsm-system:15010",
        SecureStream = true,
    };

    private const string AuthorityPem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    private static DataPlaneGateway Gateway(string infrastructure = "") => DataPlaneGateway.Read(JsonNode.Parse($$"""
        {
          "apiVersion": "gateway.networking.k8s.io/v1",
          "kind": "Gateway",
          "metadata": { "name": "simple-fsm-gateway", "namespace": "httpbin", "uid": "6b1f0c7e-0000-4000-8000-000000000001" },
          "spec": {
            "gatewayClassName": "fsm",
            {{infrastructure}}
            "listeners": [ { "name": "foo", "port": 8000, "protocol": "TCP" }, { "name": "bar", "port": 8001, "protocol": "TCP" }, { "name": "again", "port": 8000, "protocol": "TCP" } ]
          }
        }
        """)!.AsObject());

    private static JObject Render(DataPlaneObjects objects, params (string Name, object Value)[] more)
    {
        var json = new JsonObject
        {
            ["deployment"] = JsonNode.Parse(KubernetesJson.Serialize(objects.Deployment)),
            ["service"] = JsonNode.Parse(KubernetesJson.Serialize(objects.Service)),
            ["podDisruptionBudget"] = objects.DisruptionBudget is null ? null : JsonNode.Parse(KubernetesJson.Serialize(objects.DisruptionBudget)),
        };
        foreach (var (name, value) in more)
        {
            json[name] = JsonNode.Parse(KubernetesJson.Serialize(value));
        }

        return JObject.Parse(json.ToJsonString());
    }

    private static (DataPlaneParameters Parameters, IReadOnlyList<string> Errors) Parameters(string data) =>
        DataPlaneParameters.Read("httpbin/gateway-params", JsonNode.Parse(data)!.AsObject());

    [Fact]
    public void Plain_gateway_gets_a_deployment_and_a_load_balancer_service_and_no_disruption_budget()
    {
        var gateway = Gateway();

        var objects = DataPlaneManifests.Build(gateway, DataPlaneParameters.None, Options);

        Assert.Null(objects.DisruptionBudget);
        Snapshot.Match(Render(objects, ("serviceAccount", DataPlaneManifests.ServiceAccount("httpbin", [gateway], Options)), ("authorityConfigMap", DataPlaneManifests.AuthorityConfigMap("httpbin", [gateway], AuthorityPem, Options))));
    }

    [Fact]
    public void Infrastructure_labels_and_annotations_reach_every_object_and_the_pods_but_never_the_selector()
    {
        var gateway = Gateway("""
            "infrastructure": {
              "labels": { "team": "payments", "app": "not-ours-wins" },
              "annotations": { "service.beta.kubernetes.io/aws-load-balancer-type": "nlb", "gateway.fsm-gateway.io/gateway": "spoofed" }
            },
            """);

        var objects = DataPlaneManifests.Build(gateway, DataPlaneParameters.None, Options with { Replicas = 2 });

        Assert.Equal("payments", objects.Service.Metadata.Labels["team"]);
        Assert.Equal("fsm-gateway", objects.Service.Metadata.Labels["app"]);
        Assert.Equal("httpbin/simple-fsm-gateway", objects.Deployment.Metadata.Annotations["gateway.fsm-gateway.io/gateway"]);
        Assert.Equal("nlb", objects.Service.Metadata.Annotations["service.beta.kubernetes.io/aws-load-balancer-type"]);
        Assert.Equal("payments", objects.Deployment.Spec.Template.Metadata.Labels["team"]);
        Assert.Equal("payments", objects.DisruptionBudget!.Metadata.Labels["team"]);
        Assert.DoesNotContain("team", objects.Deployment.Spec.Selector.MatchLabels.Keys);
        Snapshot.Match(Render(objects));
    }

    [Fact]
    public void ParametersRef_config_map_sets_replicas_resources_service_type_and_traffic_policy_and_three_replicas_get_a_disruption_budget()
    {
        var gateway = Gateway("""
            "infrastructure": { "parametersRef": { "group": "", "kind": "ConfigMap", "name": "gateway-params" } },
            """);
        Assert.Equal(new ParametersReference(string.Empty, "ConfigMap", "gateway-params"), gateway.ParametersRef);
        var (parameters, errors) = Parameters("""
            {
              "replicas": "3",
              "serviceType": "NodePort",
              "externalTrafficPolicy": "Local",
              "resources": "requests: { cpu: 250m, memory: 128Mi }\nlimits: { memory: 256Mi }\n"
            }
            """);
        Assert.Empty(errors);

        var objects = DataPlaneManifests.Build(gateway, parameters, Options);

        Assert.Equal(3, objects.Deployment.Spec.Replicas);
        Assert.Equal("1", objects.DisruptionBudget!.Spec.MinAvailable.Value);
        Assert.Equal(objects.Deployment.Spec.Selector.MatchLabels, objects.DisruptionBudget.Spec.Selector.MatchLabels);
        Assert.Equal(("NodePort", "Local"), (objects.Service.Spec.Type, objects.Service.Spec.ExternalTrafficPolicy));
        Snapshot.Match(Render(objects));
    }

    [Fact]
    public void Invalid_config_map_gives_one_error_per_bad_field_naming_the_config_map_and_the_field()
    {
        var (_, errors) = Parameters("""
            {
              "replicas": "three",
              "serviceType": "Ingress",
              "externalTrafficPolicy": "Nearest",
              "resources": "requests: { cpu: lots }\n",
              "replica": "2"
            }
            """);

        Assert.All(errors, e => Assert.StartsWith("ConfigMap httpbin/gateway-params: data.", e, StringComparison.Ordinal));
        Snapshot.Match(errors);
    }

    [Theory]
    [InlineData("""{ "replicas": "0" }""", "data.replicas: '0' is not a whole number from 1 to 100")]
    [InlineData("""{ "replicas": "101" }""", "data.replicas: '101' is not a whole number from 1 to 100")]
    [InlineData("""{ "serviceType": "ClusterIP", "externalTrafficPolicy": "Local" }""", "data.externalTrafficPolicy: only applies to a LoadBalancer or NodePort Service, not ClusterIP")]
    [InlineData("""{ "resources": "requests: { memory: 512Mi }\nlimits: { memory: 256Mi }" }""", "data.resources: requests.memory (512Mi) is more than limits.memory (256Mi)")]
    [InlineData("""{ "resources": "requests: { cpu: 1 }\nclaims: [{ name: gpu }]" }""", "data.resources: only requests and limits may be set")]
    [InlineData("""{ "resources": "cpu: 1" }""", "data.resources: not a resources object")]
    public void Invalid_value_is_named(string data, string expected)
    {
        var (_, errors) = Parameters(data);

        Assert.Contains(errors, e => e.Contains(expected, StringComparison.Ordinal));
    }

    /// <summary>A ConfigMap as FSM users write it (FSM's e2e test, tests/e2e/e2e_gatewayapi_test.go, plus chart values FsmGateway does not map).</summary>
    private static (DataPlaneParameters Parameters, IReadOnlyList<string> Errors) FsmValues(string valuesYaml, string? extraData = null)
    {
        var data = new JsonObject { ["values.yaml"] = valuesYaml };
        foreach (var (key, value) in JsonNode.Parse(extraData ?? "{}")!.AsObject())
        {
            data[key] = value?.DeepClone();
        }

        return DataPlaneParameters.Read("httpbin/gateway-params", data);
    }

    [Fact]
    public void Fsm_values_yaml_config_map_sets_replicas_resources_service_type_and_traffic_policy_and_ignores_chart_values_it_does_not_map()
    {
        var (parameters, errors) = FsmValues("""
            fsm:
              image: { registry: flomesh, tag: "1.6.0" }
              gateway:
                logLevel: debug
                replicas: 2
                serviceType: NodePort
                externalTrafficPolicy: Local
                resources:
                  requests:
                    cpu: 123m
                    memory: 257Mi
                  limits:
                    cpu: 1314m
                    memory: 2048Mi
                podDisruptionBudget: { enabled: true, minAvailable: 1 }
                nodeSelector: { disktype: ssd }
                unknownToFsmToo: 42
            """, """{ "notes.txt": "FSM reads only values.yaml" }""");
        Assert.Empty(errors);
        Assert.Equal((2, "NodePort", "Local"), (parameters.Replicas, parameters.ServiceType, parameters.ExternalTrafficPolicy));

        var objects = DataPlaneManifests.Build(Gateway(), parameters, Options);

        Assert.Equal(2, objects.Deployment.Spec.Replicas);
        Assert.Equal("257Mi", objects.Deployment.Spec.Template.Spec.Containers[0].Resources.Requests["memory"].ToString());
        Assert.NotNull(objects.DisruptionBudget);
        Snapshot.Match(Render(objects));
    }

    [Fact]
    public void Fsm_values_yaml_without_fsm_gateway_values_takes_every_default()
    {
        foreach (var yaml in new[] { "", "fsm:\n", "fsm:\n  image: { tag: 1.6.0 }\n", "fsm:\n  gateway: {}\n", "other: 1\n" })
        {
            var (parameters, errors) = FsmValues(yaml);

            Assert.Empty(errors);
            Assert.Equal(DataPlaneParameters.None, parameters);
        }
    }

    [Fact]
    public void Invalid_fsm_values_yaml_gives_one_error_per_bad_field_naming_the_config_map_key_and_the_value_path()
    {
        var (_, errors) = FsmValues("""
            fsm:
              gateway:
                replicas: three
                serviceType: Ingress
                externalTrafficPolicy: [Local]
                resources:
                  requests: { cpu: lots }
            """);

        Assert.All(errors, e => Assert.StartsWith("ConfigMap httpbin/gateway-params: data.values.yaml: fsm.gateway.", e, StringComparison.Ordinal));
        Snapshot.Match(errors);
    }

    [Theory]
    [InlineData("fsm: { gateway: { replicas: 0 } }", "", "data.values.yaml: fsm.gateway.replicas: '0' is not a whole number from 1 to 100")]
    [InlineData("fsm: { gateway: { serviceType: ClusterIP, externalTrafficPolicy: Local } }", "", "data.values.yaml: fsm.gateway.externalTrafficPolicy: only applies to a LoadBalancer or NodePort Service, not ClusterIP")]
    [InlineData("fsm: { gateway: { resources: 2 } }", "", "data.values.yaml: fsm.gateway.resources: only requests and limits may be set")]
    [InlineData("fsm: { gateway: { resources: { requests: { memory: 512Mi }, limits: { memory: 256Mi } } } }", "", "data.values.yaml: fsm.gateway.resources: requests.memory (512Mi) is more than limits.memory (256Mi)")]
    [InlineData("fsm: [gateway]", "", "data.values.yaml: fsm: is not a mapping")]
    [InlineData("fsm: { gateway: replicas=2 }", "", "data.values.yaml: fsm.gateway: is not a mapping")]
    [InlineData("fsm: { gateway: { replicas: 2 }", "", "data.values.yaml: not YAML")]
    [InlineData("fsm: { gateway: { replicas: 2 } }", """{ "replicas": "3" }""", "data.replicas: may not be set next to data.values.yaml (set fsm.gateway.replicas in values.yaml)")]
    public void Invalid_fsm_values_yaml_is_named(string valuesYaml, string extraData, string expected)
    {
        var (_, errors) = FsmValues(valuesYaml, extraData.Length == 0 ? null : extraData);

        Assert.Contains(errors, e => e.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void With_a_controller_address_the_pods_subscribe_to_the_config_stream_and_without_one_they_do_not()
    {
        var streamed = DataPlaneManifests.Build(Gateway(), DataPlaneParameters.None, Options with { ControllerAddress = "http://fsm-gateway-controller.fsm-system:15010", SecureStream = false });
        var args = streamed.Deployment.Spec.Template.Spec.Containers[0].Args;
        Assert.Equal("http://fsm-gateway-controller.fsm-system:15010", args[args.IndexOf("--controller-address") + 1]);
        Assert.False(streamed.Deployment.Spec.Template.Spec.AutomountServiceAccountToken);

        var watching = DataPlaneManifests.Build(Gateway(), DataPlaneParameters.None, Options with { ControllerAddress = null, SecureStream = false });
        Assert.DoesNotContain("--controller-address", watching.Deployment.Spec.Template.Spec.Containers[0].Args);
        Assert.Null(watching.Deployment.Spec.Template.Spec.AutomountServiceAccountToken);
    }

    [Fact]
    public void On_the_secured_stream_pods_verify_the_controller_with_the_ca_config_map_and_authenticate_with_a_projected_token_and_mount_no_api_token()
    {
        var pod = DataPlaneManifests.Build(Gateway(), DataPlaneParameters.None, Options).Deployment.Spec.Template.Spec;
        var container = pod.Containers[0];
        string Arg(string name) => container.Args[container.Args.IndexOf(name) + 1];

        Assert.False(pod.AutomountServiceAccountToken);
        Assert.Equal("fsm-gateway", pod.ServiceAccountName);
        Assert.StartsWith("https://", Arg("--controller-address"), StringComparison.Ordinal);

        var ca = Assert.Single(pod.Volumes, v => v.ConfigMap is not null);
        Assert.Equal("fsm-gateway-controller-ca", ca.ConfigMap.Name);
        var caMount = Assert.Single(container.VolumeMounts, m => m.Name == ca.Name);
        Assert.Equal($"{caMount.MountPath}/ca.crt", Arg("--controller-ca-file"));

        var token = Assert.Single(pod.Volumes, v => v.Projected is not null);
        var projection = Assert.Single(token.Projected.Sources).ServiceAccountToken;
        Assert.Equal("fsm-gateway-controller", projection.Audience);
        Assert.Equal(600, projection.ExpirationSeconds);
        var tokenMount = Assert.Single(container.VolumeMounts, m => m.Name == token.Name);
        Assert.True(tokenMount.ReadOnlyProperty);
        Assert.Equal($"{tokenMount.MountPath}/{projection.Path}", Arg("--controller-token-file"));

        var configMap = DataPlaneManifests.AuthorityConfigMap("httpbin", [Gateway()], AuthorityPem, Options);
        Assert.Equal(("fsm-gateway-controller-ca", "httpbin"), (configMap.Metadata.Name, configMap.Metadata.NamespaceProperty));
        Assert.Equal(AuthorityPem, configMap.Data["ca.crt"]);
        Assert.Equal("simple-fsm-gateway", Assert.Single(configMap.Metadata.OwnerReferences).Name);

        var plain = DataPlaneManifests.Build(Gateway(), DataPlaneParameters.None, Options with { SecureStream = false }).Deployment.Spec.Template.Spec;
        Assert.DoesNotContain(plain.Volumes, v => v.Projected is not null || v.ConfigMap is not null);
        Assert.DoesNotContain("--controller-token-file", plain.Containers[0].Args);
    }

    [Fact]
    public void Grace_period_is_the_pre_stop_delay_plus_the_drain_timeout_plus_a_margin_and_the_pod_drains_for_the_drain_timeout()
    {
        var options = Options with { DrainTimeout = TimeSpan.FromSeconds(90), PreStopDelay = TimeSpan.FromSeconds(7) };

        var pod = DataPlaneManifests.Build(Gateway(), DataPlaneParameters.None, options).Deployment.Spec.Template.Spec;

        Assert.Equal(90 + 7 + 10, pod.TerminationGracePeriodSeconds);
        Assert.Equal(7, pod.Containers[0].Lifecycle.PreStop.Sleep.Seconds);
        var args = pod.Containers[0].Args;
        Assert.Equal("90s", args[args.IndexOf("--drain-timeout") + 1]);
    }

    [Fact]
    public void Without_a_pre_stop_delay_there_is_no_pre_stop_hook_and_a_sub_second_drain_is_written_in_milliseconds()
    {
        var options = Options with { DrainTimeout = TimeSpan.FromMilliseconds(1500), PreStopDelay = TimeSpan.Zero };

        var pod = DataPlaneManifests.Build(Gateway(), DataPlaneParameters.None, options).Deployment.Spec.Template.Spec;

        Assert.Null(pod.Containers[0].Lifecycle);
        Assert.Equal(12, pod.TerminationGracePeriodSeconds);
        Assert.Equal("1500ms", pod.Containers[0].Args[pod.Containers[0].Args.IndexOf("--drain-timeout") + 1]);
    }

    [Fact]
    public void Same_gateway_gives_the_same_objects_every_time()
    {
        var first = Render(DataPlaneManifests.Build(Gateway(), DataPlaneParameters.None, Options));
        var second = Render(DataPlaneManifests.Build(Gateway(), DataPlaneParameters.None, Options));

        Assert.True(JToken.DeepEquals(first, second));
    }
}
