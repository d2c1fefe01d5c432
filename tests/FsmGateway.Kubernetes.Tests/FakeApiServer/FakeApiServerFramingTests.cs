using System.Diagnostics;
using FsmGateway.Testing.Kubernetes;

namespace FsmGateway.Kubernetes.Tests.FakeApi;

/// <summary>Responses framed as kube-apiserver frames them: Content-Length up to 2 KiB, chunked above, the final chunk written separately.</summary>
public sealed class FakeApiServerFramingTests : IAsyncLifetime
{
    private static readonly TimeSpan FinalChunkDelay = TimeSpan.FromMilliseconds(400);
    private FakeApiServer _server = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _server = await FakeApiServer.StartAsync(new FakeApiServerOptions { ChunkedAbove = 2048, FinalChunkDelay = FinalChunkDelay, InstallGatewayApiCrds = true });
        _http = new HttpClient { BaseAddress = _server.Url };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task Small_responses_have_a_content_length_and_large_ones_are_chunked_with_the_final_chunk_late()
    {
        using (var small = await _http.GetAsync("version", HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.NotNull(small.Content.Headers.ContentLength);
            Assert.True(small.Content.Headers.ContentLength <= 2048);
            Assert.NotEqual(true, small.Headers.TransferEncodingChunked);
        }

        for (var i = 0; i < 20; i++)
        {
            _server.ApplyYaml($"apiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: cm-{i}, namespace: default }}\ndata: {{ text: '{new string('x', 200)}' }}\n");
        }

        using var large = await _http.GetAsync("api/v1/configmaps", HttpCompletionOption.ResponseHeadersRead);
        Assert.Null(large.Content.Headers.ContentLength);
        Assert.True(large.Headers.TransferEncodingChunked);
        var stream = await large.Content.ReadAsStreamAsync();
        var buffer = new byte[64 * 1024];
        var total = await stream.ReadAtLeastAsync(buffer, 2049, throwOnEndOfStream: true);

        // Everything but the final chunk is there at once; the end of the body comes only with the final chunk.
        var end = Stopwatch.StartNew();
        while (await stream.ReadAsync(buffer.AsMemory(total)) is > 0 and var read)
        {
            total += read;
        }

        Assert.True(end.Elapsed >= FinalChunkDelay * 0.5, $"the body ended {end.Elapsed.TotalMilliseconds} ms after its data; the final chunk should come {FinalChunkDelay.TotalMilliseconds} ms later");
        Assert.True(total > 2048);
    }
}
