using System.Text.Json;
using FsmGateway.Testing.Kubernetes;

namespace FsmGateway.Kubernetes.Tests.FakeApi;

/// <summary>Responses framed as kube-apiserver frames them: Content-Length up to 2 KiB, chunked above, the final chunk written separately.</summary>
public sealed class FakeApiServerFramingTests : IAsyncLifetime
{
    /// <summary>Far longer than the test: the body must be complete while the response has not ended.</summary>
    private static readonly TimeSpan FinalChunkDelay = TimeSpan.FromMinutes(2);
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
        var buffer = new byte[256 * 1024];
        var total = 0;
        while (!IsCompleteJson(buffer.AsSpan(0, total)))
        {
            var read = await stream.ReadAsync(buffer.AsMemory(total));
            Assert.True(read > 0, "the body ended before all of its JSON arrived");
            total += read;
        }

        // All of the body is there, and the response has not ended: its final chunk is still to come.
        Assert.True(total > 2048);
        var end = stream.ReadAsync(buffer.AsMemory(total)).AsTask();
        Assert.NotSame(end, await Task.WhenAny(end, Task.Delay(TimeSpan.FromMilliseconds(500))));
    }

    private static bool IsCompleteJson(ReadOnlySpan<byte> bytes)
    {
        var reader = new Utf8JsonReader(bytes, isFinalBlock: false, state: default);
        try
        {
            return reader.Read() && reader.TrySkip();
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
