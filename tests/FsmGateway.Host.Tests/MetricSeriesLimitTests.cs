using System.Diagnostics.Metrics;
using FsmGateway.Host.Admin;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace FsmGateway.Host.Tests;

/// <summary>
/// The metrics pipeline the host serves on <c>/metrics</c> (<see cref="MetricsEndpoint.AddMetrics"/>): the meters whose
/// tag sets are few and fixed get a small series limit (the SDK preallocates every stream for its whole limit, which
/// was ~8 MiB of an idle data plane), the proxy's meter keeps the SDK's default, and the renamed gauges stay exported
/// once each.
/// </summary>
public sealed class MetricSeriesLimitTests
{
    [Fact]
    public void FixedTagMeters_StopAtTheSmallLimit_ProxyMeterKeepsTheDefault()
    {
        const int TagSets = MetricsEndpoint.FixedSeriesLimit + 50;
        var exported = new CapturingExporter();
        var services = new ServiceCollection();
        MetricsEndpoint.AddMetrics(services);
        using var reader = new BaseExportingMetricReader(exported);
        services.ConfigureOpenTelemetryMeterProvider(b => b.AddReader(reader));
        using var provider = services.BuildServiceProvider();
        _ = provider.GetRequiredService<MeterProvider>();

        // New Meter instances of the real names: the SDK subscribes by name, as it does to the host's own meters.
        using var config = new Meter("FsmGateway.Config");
        using var runtime = new Meter("System.Runtime");
        using var transport = new Meter("FsmGateway.Transport");
        var configCounter = config.CreateCounter<long>("fsmgateway.test.config_series");
        var runtimeCounter = runtime.CreateCounter<long>("dotnet.test.runtime_series");
        var transportCounter = transport.CreateCounter<long>("fsmgateway.test.transport_series");
        for (var i = 0; i < TagSets; i++)
        {
            var tag = new KeyValuePair<string, object?>("n", i);
            configCounter.Add(1, tag);
            runtimeCounter.Add(1, tag);
            transportCounter.Add(1, tag);
        }

        // (Collect on this reader: the Prometheus exporter's reader only collects for a scrape.)
        Assert.True(reader.Collect());

        // Beyond the limit the SDK adds into one overflow series: nothing is lost, the total stays.
        // (The SDK's overflow series may or may not count against the limit: one either side.)
        Assert.InRange(exported.Points["fsmgateway.test.config_series"].Count, MetricsEndpoint.FixedSeriesLimit - 1, MetricsEndpoint.FixedSeriesLimit + 1);
        Assert.InRange(exported.Points["dotnet.test.runtime_series"].Count, MetricsEndpoint.FixedSeriesLimit - 1, MetricsEndpoint.FixedSeriesLimit + 1);
        Assert.Equal(TagSets, exported.Points["fsmgateway.test.config_series"].Sum);
        Assert.Equal(TagSets, exported.Points["fsmgateway.test.transport_series"].Count);
    }

    [Fact]
    public void RenamedGauges_AreExportedOnceUnderTheirPrometheusName()
    {
        var exported = new CapturingExporter();
        var services = new ServiceCollection();
        MetricsEndpoint.AddMetrics(services);
        using var reader = new BaseExportingMetricReader(exported);
        services.ConfigureOpenTelemetryMeterProvider(b => b.AddReader(reader));
        using var provider = services.BuildServiceProvider();
        _ = provider.GetRequiredService<MeterProvider>();
        Assert.True(reader.Collect());

        Assert.Contains("dotnet.assemblies", exported.Names);
        Assert.Contains("process.threads", exported.Names);
        Assert.DoesNotContain("dotnet.assembly.count", exported.Names);
        Assert.DoesNotContain("process.thread.count", exported.Names);
        Assert.Equal(exported.Names.Count, exported.Names.Distinct().Count());
    }

    private sealed class CapturingExporter : BaseExporter<Metric>
    {
        public Dictionary<string, (int Count, long Sum)> Points { get; } = [];

        public List<string> Names { get; } = [];

        public override ExportResult Export(in Batch<Metric> batch)
        {
            foreach (var metric in batch)
            {
                Names.Add(metric.Name);
                int count = 0;
                long sum = 0;
                foreach (ref readonly var point in metric.GetMetricPoints())
                {
                    count++;
                    if (metric.MetricType == MetricType.LongSum)
                    {
                        sum += point.GetSumLong();
                    }
                }

                Points[metric.Name] = (count, sum);
            }

            return ExportResult.Success;
        }
    }
}
