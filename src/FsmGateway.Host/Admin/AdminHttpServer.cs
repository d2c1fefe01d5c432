using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Host.Admin;

/// <summary>
/// The admin and metrics ports of every mode, without Kestrel: a small HTTP/1.1 server on a <see cref="Socket"/>, one
/// request per connection (<c>Connection: close</c>), GET and HEAD only, the request head bounded in size
/// (<see cref="AdminHttpServerLimits.MaxRequestHeadBytes"/>) and the whole exchange in time
/// (<see cref="AdminHttpServerLimits.RequestTimeout"/>). Each request is handed to the handler as the ASP.NET Core
/// request features (request, response, body, connection), so the same middleware as on Kestrel answers it: the health
/// checks' and the Prometheus exporter's. Linking Kestrel and the web host into the Native AOT data plane cost
/// ~9 MiB of its idle RSS (36.2 -> 27.1 MiB; benchmarks/README.md, "Idle RSS, round five").
/// </summary>
internal sealed partial class AdminHttpServer : IAsyncDisposable
{
    private static readonly byte[] HeadEnd = "\r\n\r\n"u8.ToArray();

    private readonly Func<IFeatureCollection, Task> _handler;
    private readonly AdminHttpServerLimits _limits;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly List<(Socket Socket, bool MetricsOnly)> _listeners = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _acceptLoops = [];
    private int _connections;

    /// <param name="handler">Answers one request: reads the request features, sets the response's.</param>
    /// <param name="limits">The bounds of a request.</param>
    /// <param name="time">The clock of the request timeout.</param>
    /// <param name="logger">Where refused and failed requests are logged.</param>
    public AdminHttpServer(Func<IFeatureCollection, Task> handler, AdminHttpServerLimits limits, TimeProvider time, ILogger logger)
    {
        _handler = handler;
        _limits = limits;
        _time = time;
        _logger = logger;
    }

    /// <summary>
    /// Binds <paramref name="endpoint"/> (port 0: a free port) and starts accepting; returns the bound endpoint.
    /// A metrics-only port's requests carry <paramref name="metricsOnlyItem"/> in their connection items
    /// (<see cref="IConnectionItemsFeature"/>).
    /// Throws <see cref="SocketException"/> when the address cannot be bound.
    /// </summary>
    public IPEndPoint Listen(IPEndPoint endpoint, string? metricsOnlyItem = null)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (endpoint.AddressFamily == AddressFamily.InterNetworkV6 && endpoint.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }

            socket.Bind(endpoint);
            socket.Listen(_limits.MaxConnections);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        _listeners.Add((socket, metricsOnlyItem is not null));
        _acceptLoops.Add(AcceptLoopAsync(socket, metricsOnlyItem));
        return (IPEndPoint)socket.LocalEndPoint!;
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        foreach (var (socket, _) in _listeners)
        {
            socket.Dispose();
        }

        await Task.WhenAll(_acceptLoops).ConfigureAwait(false);
        _stopping.Dispose();
    }

    private async Task AcceptLoopAsync(Socket listener, string? metricsOnlyItem)
    {
        // Off the caller's thread: Listen returns at once.
        await Task.Yield();
        while (!_stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                // A connection reset before it was accepted, or out of descriptors: the next accept may succeed.
                LogAcceptFailed(_logger, e.SocketErrorCode);
                continue;
            }

            if (Interlocked.Increment(ref _connections) > _limits.MaxConnections)
            {
                Interlocked.Decrement(ref _connections);
                LogTooManyConnections(_logger, _limits.MaxConnections);
                client.Dispose();
                continue;
            }

            _ = ServeAsync(client, metricsOnlyItem);
        }
    }

    private async Task ServeAsync(Socket client, string? metricsOnlyItem)
    {
        using var timeout = new CancellationTokenSource(_limits.RequestTimeout, _time);
        using var aborted = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, _stopping.Token);
        var buffer = ArrayPool<byte>.Shared.Rent(_limits.MaxRequestHeadBytes);
        try
        {
            client.NoDelay = true;
            var length = await ReadHeadAsync(client, buffer, aborted.Token).ConfigureAwait(false);
            var (status, response) = length switch
            {
                0 => (0, null),
                < 0 => (StatusCodes.Status431RequestHeaderFieldsTooLarge, null),
                _ => await AnswerAsync(client, buffer.AsMemory(0, length), metricsOnlyItem, aborted.Token).ConfigureAwait(false),
            };
            if (status != 0)
            {
                response ??= Plain(status, $"{ReasonPhrases.GetReasonPhrase(status).ToLowerInvariant()}\n", head: false);
                await client.SendAsync(response, SocketFlags.None, aborted.Token).ConfigureAwait(false);
                await LingerAsync(client, buffer).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !_stopping.IsCancellationRequested)
        {
            // Too slow (or never finished its request): told so when the socket still takes it, then closed.
            LogRequestTimedOut(_logger, _limits.RequestTimeout.TotalSeconds);
            using var last = new CancellationTokenSource(TimeSpan.FromSeconds(1), _time);
            try
            {
                await client.SendAsync(Plain(StatusCodes.Status408RequestTimeout, "request timeout\n", head: false), SocketFlags.None, last.Token).ConfigureAwait(false);
                await LingerAsync(client, buffer).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException)
            {
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopping, or the client went away.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            client.Dispose();
            Interlocked.Decrement(ref _connections);
        }
    }

    /// <summary>
    /// Ends the answer (FIN), then reads and drops what the client still sends, for a second and 64 KiB at most, until
    /// it closes: closing with unread bytes would send a reset, and a reset can discard the answer before the client
    /// reads it (a request refused as too large, or one answered before it was complete).
    /// </summary>
    private async Task LingerAsync(Socket client, byte[] buffer)
    {
        client.Shutdown(SocketShutdown.Send);
        using var linger = new CancellationTokenSource(TimeSpan.FromSeconds(1), _time);
        for (var dropped = 0; dropped < 64 * 1024;)
        {
            var read = await client.ReceiveAsync(buffer, SocketFlags.None, linger.Token).ConfigureAwait(false);
            if (read == 0)
            {
                return;
            }

            dropped += read;
        }
    }

    /// <summary>Reads the request head into <paramref name="buffer"/>: its length, 0 when the client closed first, -1 when it does not fit.</summary>
    private async Task<int> ReadHeadAsync(Socket client, byte[] buffer, CancellationToken cancellationToken)
    {
        var length = 0;
        while (true)
        {
            var limit = _limits.MaxRequestHeadBytes;
            if (length == limit)
            {
                return -1;
            }

            var read = await client.ReceiveAsync(buffer.AsMemory(length, limit - length), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return 0;
            }

            // The end of the head may straddle two reads: search from three bytes before the new ones.
            var from = Math.Max(0, length - (HeadEnd.Length - 1));
            length += read;
            var end = buffer.AsSpan(from, length - from).IndexOf(HeadEnd);
            if (end >= 0)
            {
                return from + end + HeadEnd.Length;
            }
        }
    }

    private async Task<(int Status, byte[]? Response)> AnswerAsync(Socket client, ReadOnlyMemory<byte> head, string? metricsOnlyItem, CancellationToken cancellationToken)
    {
        if (!TryParse(head.Span, out var request, out var failure))
        {
            return (failure, null);
        }

        if (request.Method is not ("GET" or "HEAD"))
        {
            return (StatusCodes.Status405MethodNotAllowed, Plain(StatusCodes.Status405MethodNotAllowed, "method not allowed\n", head: false, "Allow: GET, HEAD\r\n"));
        }

        var body = new MemoryStream();
        var response = new HttpResponseFeature { Body = body };
        var features = new FeatureCollection();
        features.Set<IHttpRequestFeature>(request);
        features.Set<IHttpResponseFeature>(response);
        features.Set<IHttpResponseBodyFeature>(new StreamResponseBodyFeature(body));
        features.Set<IHttpRequestLifetimeFeature>(new HttpRequestLifetimeFeature { RequestAborted = cancellationToken });
        var local = (IPEndPoint)client.LocalEndPoint!;
        var remote = (IPEndPoint)client.RemoteEndPoint!;
        features.Set<IHttpConnectionFeature>(new HttpConnectionFeature
        {
            LocalIpAddress = local.Address,
            LocalPort = local.Port,
            RemoteIpAddress = remote.Address,
            RemotePort = remote.Port,
        });
        if (metricsOnlyItem is not null)
        {
            features.Set<IConnectionItemsFeature>(new ConnectionItems(new Dictionary<object, object?> { [metricsOnlyItem] = true }));
        }

        // Off the socket's completion thread (inline completions are on in the data plane): a scrape renders every series.
        try
        {
            await Task.Run(() => _handler(features), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogRequestFailed(_logger, e.GetType().Name, e.Message);
            LogRequestFailedStack(_logger, e);
            return (StatusCodes.Status500InternalServerError, null);
        }

        return (response.StatusCode, Serialize(response, body, request.Method == "HEAD"));
    }

    private static bool TryParse(ReadOnlySpan<byte> head, out HttpRequestFeature request, out int failure)
    {
        request = new HttpRequestFeature();
        failure = StatusCodes.Status400BadRequest;
        string text;
        try
        {
            // Request heads are ASCII (RFC 9110: field values beyond it are opaque; none of ours reads them).
            text = Encoding.Latin1.GetString(head[..^4]);
        }
        catch (ArgumentException)
        {
            return false;
        }

        var lines = text.Split("\r\n");
        var parts = lines[0].Split(' ');
        if (parts.Length != 3 || parts[0].Length == 0 || !parts[0].All(char.IsAsciiLetterUpper) || !parts[1].StartsWith('/'))
        {
            return false;
        }

        if (parts[2] is not ("HTTP/1.1" or "HTTP/1.0"))
        {
            failure = parts[2].StartsWith("HTTP/", StringComparison.Ordinal) ? StatusCodes.Status505HttpVersionNotsupported : StatusCodes.Status400BadRequest;
            return false;
        }

        var headers = new HeaderDictionary();
        foreach (var line in lines.AsSpan(1))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0 || line.AsSpan(0, colon).ContainsAny(" \t"))
            {
                return false;
            }

            headers.Append(line[..colon], line[(colon + 1)..].Trim(' ', '\t'));
        }

        // One request per connection and no body read: a request that announces one is not one of ours.
        if (headers.ContainsKey("Transfer-Encoding") || (headers.ContentLength is { } length && length != 0))
        {
            return false;
        }

        var target = parts[1];
        var query = target.IndexOf('?', StringComparison.Ordinal);
        request.Method = parts[0];
        request.Protocol = parts[2];
        request.Scheme = "http";
        request.RawTarget = target;
        request.Path = PathString.FromUriComponent(query < 0 ? target : target[..query]);
        request.QueryString = query < 0 ? string.Empty : target[query..];
        request.Headers = headers;
        return true;
    }

    private static byte[] Serialize(HttpResponseFeature response, MemoryStream body, bool head)
    {
        var text = new StringBuilder()
            .Append("HTTP/1.1 ").Append(response.StatusCode).Append(' ').Append(response.ReasonPhrase ?? ReasonPhrases.GetReasonPhrase(response.StatusCode)).Append("\r\n");
        foreach (var (name, values) in response.Headers)
        {
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) || name.Equals("Connection", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            foreach (var value in values)
            {
                text.Append(name).Append(": ").Append(value).Append("\r\n");
            }
        }

        text.Append("Content-Length: ").Append(body.Length).Append("\r\nConnection: close\r\n\r\n");
        var start = Encoding.Latin1.GetBytes(text.ToString());
        if (head || body.Length == 0)
        {
            return start;
        }

        var all = new byte[start.Length + body.Length];
        start.CopyTo(all, 0);
        body.GetBuffer().AsSpan(0, (int)body.Length).CopyTo(all.AsSpan(start.Length));
        return all;
    }

    private static byte[] Plain(int status, string body, bool head, string extraHeaders = "") =>
        Encoding.Latin1.GetBytes(
            $"HTTP/1.1 {status} {ReasonPhrases.GetReasonPhrase(status)}\r\nContent-Type: text/plain; charset=utf-8\r\n{extraHeaders}Content-Length: {body.Length}\r\nConnection: close\r\n\r\n{(head ? string.Empty : body)}");

    private sealed class ConnectionItems(IDictionary<object, object?> items) : IConnectionItemsFeature
    {
        public IDictionary<object, object?> Items { get; set; } = items;
    }

    [LoggerMessage(1, LogLevel.Debug, "Admin connection not accepted: {Error}")]
    private static partial void LogAcceptFailed(ILogger logger, SocketError error);

    [LoggerMessage(2, LogLevel.Warning, "Admin connection refused: {Limit} connections are open already")]
    private static partial void LogTooManyConnections(ILogger logger, int limit);

    [LoggerMessage(3, LogLevel.Debug, "Admin request timed out: not answered within {Seconds} s")]
    private static partial void LogRequestTimedOut(ILogger logger, double seconds);

    [LoggerMessage(4, LogLevel.Warning, "Admin request failed: {Type}: {Message}")]
    private static partial void LogRequestFailed(ILogger logger, string type, string message);

    [LoggerMessage(5, LogLevel.Debug, "Admin request failed")]
    private static partial void LogRequestFailedStack(ILogger logger, Exception exception);
}

/// <summary>The bounds of <see cref="AdminHttpServer"/>: a probe or a scrape is one small request and a quick answer.</summary>
internal sealed record AdminHttpServerLimits
{
    /// <summary>The request line and headers, at most (a larger head is answered 431).</summary>
    public int MaxRequestHeadBytes { get; init; } = 8 * 1024;

    /// <summary>From accept to the last byte of the answer (a slower client is answered 408 and closed).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Connections served at once; more are closed at accept.</summary>
    public int MaxConnections { get; init; } = 64;
}
