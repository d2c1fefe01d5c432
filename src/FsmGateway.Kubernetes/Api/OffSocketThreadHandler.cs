using System.Net;

namespace FsmGateway.Kubernetes.Api;

/// <summary>
/// Keeps the API client's work off the threads that complete socket I/O. With inline socket completions
/// (<c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1</c>, which <c>fsm-gateway</c> sets where it proxies traffic and
/// an embedder may set for its own process) every continuation of a socket read runs on the epoll thread, and
/// KubernetesClient deserialises a response body with a synchronous <c>JsonSerializer.Deserialize(stream)</c>: a
/// body whose last chunk has not arrived yet (kube-apiserver sends bodies above 2 KiB chunked, the final chunk written
/// separately) then blocks the epoll thread in a synchronous receive that only that same thread could complete, and
/// every socket of the process stops.
/// <list type="bullet">
/// <item>A response that is not a watch is read to its end asynchronously here (<see cref="HttpContent.LoadIntoBufferAsync(CancellationToken)"/>)
/// before the client sees it, so its deserialisation reads memory, never the socket.</item>
/// <item>Every await on the network here resumes on the thread pool (<see cref="ConfigureAwaitOptions.ForceYielding"/>),
/// and a watch's body is wrapped so that each read does too: the client's and our code after a response or a watch
/// event never runs on an epoll thread, whatever it does.</item>
/// </list>
/// </summary>
internal sealed class OffSocketThreadHandler : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
        try
        {
            if (IsWatch(request.RequestUri))
            {
                response.Content = new YieldingContent(response.Content);
            }
            else
            {
                await response.Content.LoadIntoBufferAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
            }

            return response;
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    /// <summary>Whether the request is a watch (<c>watch=true</c>): its body never ends, so it is streamed, not buffered.</summary>
    internal static bool IsWatch(Uri? uri)
    {
        var query = uri?.Query;
        if (string.IsNullOrEmpty(query))
        {
            return false;
        }

        foreach (var part in query.TrimStart('?').Split('&'))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 && part.AsSpan(0, eq).Equals("watch", StringComparison.Ordinal))
            {
                var value = Uri.UnescapeDataString(part[(eq + 1)..]);
                return value.Equals("true", StringComparison.OrdinalIgnoreCase) || value == "1";
            }
        }

        return false;
    }

    /// <summary>A response body whose reads resume on the thread pool; headers are the original's.</summary>
    private sealed class YieldingContent : HttpContent
    {
        private readonly HttpContent _inner;

        public YieldingContent(HttpContent inner)
        {
            _inner = inner;
            foreach (var header in inner.Headers)
            {
                Headers.TryAddWithoutValidation(header.Key, header.Value);
            }
        }

        protected override async Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken) =>
            new YieldingStream(await _inner.ReadAsStreamAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.ForceYielding));

        protected override Task<Stream> CreateContentReadStreamAsync() => CreateContentReadStreamAsync(CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            var source = await CreateContentReadStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (source.ConfigureAwait(false))
            {
                await source.CopyToAsync(stream, cancellationToken).ConfigureAwait(false);
            }
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    /// <summary>A read-only stream whose asynchronous reads always resume on the thread pool, never inline where the socket completed.</summary>
    private sealed class YieldingStream(Stream inner) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            await inner.ReadAsync(buffer, cancellationToken).AsTask().ConfigureAwait(ConfigureAwaitOptions.ForceYielding);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        /// <summary>
        /// KubernetesClient reads watches asynchronously only. Should a synchronous read ever come, it comes from a
        /// thread-pool thread (every asynchronous read here resumes there), so it blocks that thread, not an epoll thread.
        /// </summary>
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }

        public override async ValueTask DisposeAsync()
        {
            await inner.DisposeAsync().ConfigureAwait(false);
            await base.DisposeAsync().ConfigureAwait(false);
        }
    }
}
