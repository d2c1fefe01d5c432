using System.Collections.Concurrent;
using System.Net;
using System.Threading.Channels;
using FsmGateway.Transport.ControlPlane.Protocol;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Transport.Tests.ControlPlane;

/// <summary>
/// A controller's config stream on a real Kestrel (HTTP/2, 127.0.0.1, port 0): answers each Hello with a Welcome and
/// <see cref="FullSet"/>, then sends what the test pushes, and records Hellos, Reports and the bearer tokens presented.
/// <see cref="DropAsync"/> breaks the current stream as a controller that dies does; a data plane completing its
/// requests ends its stream cleanly, as the real controller does; a token in <see cref="RefusedTokens"/> is refused.
/// </summary>
internal sealed class FakeController : ConfigStream.ConfigStreamBase, IAsyncDisposable
{
    private readonly WebApplication _app;
    private Channel<ControllerMessage> _pushes = Channel.CreateUnbounded<ControllerMessage>();
    private CancellationTokenSource _drop = new();

    private FakeController(int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port, l => l.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(this);
        _app = builder.Build();
        _app.MapGrpcService<FakeController>();
    }

    public ConcurrentQueue<Hello> Hellos { get; } = new();

    public ConcurrentQueue<Report> Reports { get; } = new();

    public List<ConfigBatch> FullSet { get; } = [];

    /// <summary>The authorization header of every call, in order (empty when none was sent).</summary>
    public ConcurrentQueue<string> Tokens { get; } = new();

    /// <summary>Tokens (as in the Bearer header) refused with Unauthenticated before anything is sent.</summary>
    public ConcurrentDictionary<string, bool> RefusedTokens { get; } = new();

    /// <summary>Tokens (as in the Bearer header) whose streams are welcomed and then sent nothing: they never sync.</summary>
    public ConcurrentDictionary<string, bool> StalledTokens { get; } = new();

    /// <summary>Stalled streams that the data plane ended (cancelled or completed).</summary>
    public int StalledEnded => _stalledEnded;

    private int _stalledEnded;

    /// <summary>Streams the data plane closed by completing its requests.</summary>
    public int ClosedByDataPlane => _closedByDataPlane;

    private int _closedByDataPlane;

    public Uri Address { get; private set; } = null!;

    public static async Task<FakeController> StartAsync(int port = 0)
    {
        var controller = new FakeController(port);
        await controller._app.StartAsync();
        controller.Address = new Uri(controller._app.Urls.Single());
        return controller;
    }

    public void Push(ConfigBatch batch) => _pushes.Writer.TryWrite(new ControllerMessage { Batch = batch });

    /// <summary>Ends the current stream with an error, as a controller that goes away does.</summary>
    public async Task DropAsync()
    {
        var drop = _drop;
        _drop = new CancellationTokenSource();
        _pushes = Channel.CreateUnbounded<ControllerMessage>();
        await drop.CancelAsync();
    }

    public override async Task Subscribe(IAsyncStreamReader<DataPlaneMessage> requestStream, IServerStreamWriter<ControllerMessage> responseStream, ServerCallContext context)
    {
        var authorization = context.RequestHeaders.GetValue("authorization") ?? string.Empty;
        Tokens.Enqueue(authorization);
        if (RefusedTokens.ContainsKey(authorization.Replace("Bearer ", string.Empty, StringComparison.Ordinal)))
        {
            throw new RpcException(new Grpc.Core.Status(StatusCode.Unauthenticated, "the fake controller refuses this token"));
        }

        using var closed = new CancellationTokenSource();
        using var call = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, _drop.Token, closed.Token);
        var pushes = _pushes;
        if (!await requestStream.MoveNext(call.Token))
        {
            return;
        }

        Hellos.Enqueue(requestStream.Current.Hello);
        await responseStream.WriteAsync(new ControllerMessage { Welcome = new Welcome { ProtocolVersion = 1, ControllerId = "fake" } }, call.Token);
        if (StalledTokens.ContainsKey(authorization.Replace("Bearer ", string.Empty, StringComparison.Ordinal)))
        {
            try
            {
                while (await requestStream.MoveNext(call.Token))
                {
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // However the data plane ended it (cancelled, reset), it ended.
            }

            Interlocked.Increment(ref _stalledEnded);
            return;
        }

        foreach (var batch in FullSet)
        {
            await responseStream.WriteAsync(new ControllerMessage { Batch = batch }, call.Token);
        }

        var reading = Task.Run(async () =>
        {
            while (await requestStream.MoveNext(call.Token))
            {
                if (requestStream.Current.Report is { } report)
                {
                    Reports.Enqueue(report);
                }
            }

            // The data plane completed its requests: end the call cleanly.
            Interlocked.Increment(ref _closedByDataPlane);
            await closed.CancelAsync();
        });
        try
        {
            await foreach (var message in pushes.Reader.ReadAllAsync(call.Token))
            {
                await responseStream.WriteAsync(message, call.Token);
            }
        }
        catch (OperationCanceledException) when (closed.IsCancellationRequested && !_drop.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
        {
            return;
        }
        catch (OperationCanceledException) when (_drop.IsCancellationRequested || call.IsCancellationRequested)
        {
            throw new RpcException(new Grpc.Core.Status(StatusCode.Unavailable, "the fake controller dropped the stream"));
        }
        finally
        {
            try
            {
                await reading;
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or InvalidOperationException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _drop.CancelAsync();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _drop.Dispose();
    }
}
