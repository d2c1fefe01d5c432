using System.Text.RegularExpressions;
using FsmGateway.Kubernetes.Controller;

namespace FsmGateway.Kubernetes.Tests.Controller;

/// <summary>Provisioned names must be valid Kubernetes names whatever the Gateway is called.</summary>
public sealed partial class GatewayProvisionerNamingTests
{
    [Fact]
    public void DataPlaneName_ValidName_IsPrefixed() =>
        Assert.Equal("fsm-gateway-simple-fsm-gateway", DataPlaneManifests.DataPlaneName("simple-fsm-gateway"));

    [Theory]
    [InlineData("my.gateway")]
    [InlineData("a-gateway-name-that-is-long-enough-to-push-the-service-name-past-sixty-three-characters")]
    [InlineData("9lives")]
    public void DataPlaneName_NameThatWouldBeInvalid_IsAValidUniqueDnsLabel(string gateway)
    {
        var name = DataPlaneManifests.DataPlaneName(gateway);

        Assert.Matches(DnsLabel(), name);
        Assert.True(name.Length <= 63, name);
        Assert.NotEqual(name, DataPlaneManifests.DataPlaneName(gateway + "x"));
    }

    [Fact]
    public void GatewayLabelValue_TooLong_IsShortenedToALabelValue()
    {
        var value = DataPlaneManifests.GatewayLabelValue(new string('g', 100));

        Assert.True(value.Length <= 63);
        Assert.Equal("short", DataPlaneManifests.GatewayLabelValue("short"));
    }

    [GeneratedRegex("^[a-z]([-a-z0-9]*[a-z0-9])?$")]
    private static partial Regex DnsLabel();
}
