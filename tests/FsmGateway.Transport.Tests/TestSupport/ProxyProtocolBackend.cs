using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using FsmGateway.Routing;
using FsmGateway.Transport.ProxyProtocol;

namespace FsmGateway.Transport.Tests.TestSupport;

/// <summary>What a <see cref="ProxyProtocolBackend"/> connection brought.</summary>
/// <param name="Header">The PROXY protocol header it began with, or null.</param>
/// <param name="Error">Why the header was rejected, or null.</param>
/// <param name="Payload">Every byte after the header, to the end of the stream.</param>
internal sealed record BackendConnection(ProxyProtocolHeader? Header, string? Error, byte[] Payload);

/// <summary>
/// A backend behind the gateway on 127.0.0.1 that expects (or not) a PROXY protocol header first, reading it exactly
/// as long as the header says; it answers <c>source=ADDRESS:PORT\n</c> (the header's source) and then echoes the
/// payload, and records every connection.
/// </summary>
internal sealed class ProxyProtocolBackend : IAsyncDisposable
{
    private readonly TestBackend _server;
    private readonly ConcurrentQueue<BackendConnection> _connections = new();

    private ProxyProtocolBackend(bool expectHeader)
    {
        _server = TestBackend.Start((_, socket, cancellationToken) => HandleAsync(socket, expectHeader, cancellationToken));
    }

    /// <summary>The backend as a routing-table endpoint.</summary>
    public BackendEndpoint Endpoint => _server.Endpoint;

    /// <summary>The connections that have ended, in order.</summary>
    public IReadOnlyList<BackendConnection> Connections => [.. _connections];

    /// <summary>Starts a backend that reads a PROXY header first, answers the source, and echoes.</summary>
    /// <returns>The backend.</returns>
    public static ProxyProtocolBackend ExpectingHeader() => new(expectHeader: true);

    /// <summary>Starts a backend that records the bytes it receives and echoes them (no header expected).</summary>
    /// <returns>The backend.</returns>
    public static ProxyProtocolBackend Recording() => new(expectHeader: false);

    public ValueTask DisposeAsync() => _server.DisposeAsync();

    private async Task HandleAsync(Socket socket, bool expectHeader, CancellationToken cancellationToken)
    {
        ProxyProtocolHeader? header = null;
        string? error = null;
        if (expectHeader)
        {
            var buffer = new byte[ProxyProtocolHeader.MaxLength];
            var received = 0;
            while (true)
            {
                var result = ProxyProtocolParser.Parse(buffer.AsSpan(0, received));
                if (result.Status == ProxyProtocolParseStatus.Incomplete)
                {
                    var count = await socket.ReceiveAsync(buffer.AsMemory(received, result.Needed), SocketFlags.None, cancellationToken);
                    if (count == 0)
                    {
                        error = "end of stream in the header";
                        break;
                    }

                    received += count;
                    continue;
                }

                header = result.Header;
                error = result.Error;
                break;
            }

            if (error is null)
            {
                await socket.SendAllAsync(Encoding.ASCII.GetBytes($"source={header!.Source?.ToString() ?? "local"}\n"), cancellationToken);
            }
        }

        using var payload = new MemoryStream();
        if (error is null)
        {
            var chunk = new byte[16 * 1024];
            try
            {
                while (await socket.ReceiveAsync(chunk, SocketFlags.None, cancellationToken) is var count and > 0)
                {
                    payload.Write(chunk, 0, count);
                    await socket.SendAllAsync(chunk.AsMemory(0, count), cancellationToken);
                }

                socket.Shutdown(SocketShutdown.Send);
            }
            catch (SocketException)
            {
                // The gateway reset the connection: what arrived until then is recorded.
            }
        }

        _connections.Enqueue(new BackendConnection(header, error, payload.ToArray()));
    }

    /// <summary>A client socket connected from <paramref name="source"/> (a 127.x.y.z address, so the address seen is meaningful).</summary>
    /// <param name="source">The client's own address.</param>
    /// <param name="port">The port on 127.0.0.1.</param>
    /// <returns>The connected socket.</returns>
    public static async Task<Socket> ConnectFromAsync(IPAddress source, int port)
    {
        using var deadline = Guard.Deadline(15);
        return await TestClient.ConnectFromAsync(source, port, deadline.Token);
    }
}
