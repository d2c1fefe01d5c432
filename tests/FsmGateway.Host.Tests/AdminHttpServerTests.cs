using System.Net;
using System.Net.Sockets;
using FsmGateway.Host.Admin;
using FsmGateway.Host.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace FsmGateway.Host.Tests;

/// <summary>
/// The data plane's admin server (<see cref="AdminHttpServer"/>, no Kestrel): real sockets on 127.0.0.1 port 0, raw
/// request bytes, the whole answer read until the server closes.
/// </summary>
public sealed class AdminHttpServerTests
{
    [Fact]
    public async Task Get_IsAnsweredByTheHandler_WithLengthAndConnectionClose()
    {
        await using var server = Start(static context => context.Response.WriteAsync($"hello {context.Request.Path} {context.Request.QueryString}"));

        var answer = await Net.HttpExchangeAsync(server.Port, "GET /a/b?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 200 OK\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("\r\nContent-Length: 15\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("\r\nConnection: close\r\n", answer, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\nhello /a/b ?x=1", answer, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Head_HasTheLengthOfTheGet_ButNoBody()
    {
        await using var server = Start(static context => context.Response.WriteAsync("twelve bytes"));

        var answer = await Net.HttpExchangeAsync(server.Port, "HEAD / HTTP/1.1\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 200 OK\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("\r\nContent-Length: 12\r\n", answer, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\n", answer, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("NONSENSE\r\n\r\n")]
    [InlineData("GET /healthz\r\n\r\n")]
    [InlineData("GET healthz HTTP/1.1\r\n\r\n")]
    [InlineData("get /healthz HTTP/1.1\r\n\r\n")]
    [InlineData("GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n")]
    [InlineData("GET /healthz HTTP/1.1\r\nBad Name: x\r\n\r\n")]
    [InlineData("GET /healthz HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")]
    [InlineData("GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")]
    public async Task MalformedRequest_IsAnswered400_WithoutReachingTheHandler(string request)
    {
        var handled = 0;
        await using var server = Start(_ =>
        {
            Interlocked.Increment(ref handled);
            return Task.CompletedTask;
        });

        var answer = await Net.HttpExchangeAsync(server.Port, request);

        Assert.StartsWith("HTTP/1.1 400 Bad Request\r\n", answer, StringComparison.Ordinal);
        Assert.Equal(0, handled);
    }

    [Fact]
    public async Task UnknownHttpVersion_IsAnswered505()
    {
        await using var server = Start(static _ => Task.CompletedTask);

        var answer = await Net.HttpExchangeAsync(server.Port, "GET / HTTP/2.0\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 505 ", answer, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("POST")]
    [InlineData("PUT")]
    [InlineData("DELETE")]
    public async Task MethodOtherThanGetOrHead_IsAnswered405_WithAllow(string method)
    {
        await using var server = Start(static _ => Task.CompletedTask);

        var answer = await Net.HttpExchangeAsync(server.Port, $"{method} /healthz HTTP/1.1\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 405 Method Not Allowed\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("\r\nAllow: GET, HEAD\r\n", answer, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OversizedRequestHead_IsAnswered431_AndTheAnswerArrives()
    {
        await using var server = Start(static _ => Task.CompletedTask, new AdminHttpServerLimits { MaxRequestHeadBytes = 1024 });

        // More than the limit, all sent before the server answers: the server must not reset the connection (which
        // could discard its answer) by closing with the rest unread.
        var answer = await Net.HttpExchangeAsync(server.Port, $"GET / HTTP/1.1\r\nX-Big: {new string('a', 4000)}\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 431 Request Header Fields Too Large\r\n", answer, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SlowClient_IsAnswered408_AndClosed_WithoutReachingTheHandler()
    {
        var handled = 0;
        await using var server = Start(
            _ =>
            {
                Interlocked.Increment(ref handled);
                return Task.CompletedTask;
            },
            new AdminHttpServerLimits { RequestTimeout = TimeSpan.FromMilliseconds(300) });

        // Half a request, then nothing: the server gives up after its timeout (read until it closes).
        var answer = await Net.HttpExchangeAsync(server.Port, "GET /healthz HTTP/1.1\r\nHost: x\r\n");

        Assert.StartsWith("HTTP/1.1 408 Request Timeout\r\n", answer, StringComparison.Ordinal);
        Assert.Equal(0, handled);
    }

    [Fact]
    public async Task ClientThatConnectsAndCloses_IsForgotten_AndTheServerServesTheNext()
    {
        await using var server = Start(static context => context.Response.WriteAsync("ok"));
        using (var quitter = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await quitter.ConnectAsync(IPAddress.Loopback, server.Port);
        }

        var answer = await Net.HttpExchangeAsync(server.Port, "GET / HTTP/1.1\r\n\r\n");

        Assert.EndsWith("\r\n\r\nok", answer, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HandlerThatThrows_IsAnswered500()
    {
        await using var server = Start(static _ => throw new InvalidOperationException("boom"));

        var answer = await Net.HttpExchangeAsync(server.Port, "GET / HTTP/1.1\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 500 Internal Server Error\r\n", answer, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AdminPipeline_MetricsPortAnswers404ButForMetrics_AdminPortServesProbesAndMetrics()
    {
        await using var provider = AdminServices();
        await using var server = AdminPipelineServer(provider);
        var admin = server.Listen(new IPEndPoint(IPAddress.Loopback, 0)).Port;
        var metricsOnly = server.Listen(new IPEndPoint(IPAddress.Loopback, 0), MetricsEndpoint.MetricsOnlyItem).Port;

        Assert.StartsWith("HTTP/1.1 404 Not Found\r\n", await Net.HttpExchangeAsync(metricsOnly, "GET /healthz HTTP/1.1\r\n\r\n"), StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 404 Not Found\r\n", await Net.HttpExchangeAsync(metricsOnly, "GET /status HTTP/1.1\r\n\r\n"), StringComparison.Ordinal);
        var scraped = await Net.HttpExchangeAsync(metricsOnly, "GET /metrics HTTP/1.1\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", scraped, StringComparison.Ordinal);
        Assert.Contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n", scraped, StringComparison.Ordinal);
        Assert.Contains("\n# TYPE process_start_time_seconds gauge\n", scraped, StringComparison.Ordinal);

        Assert.EndsWith("\r\n\r\nok\n", await Net.HttpExchangeAsync(admin, "GET /healthz HTTP/1.1\r\n\r\n"), StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\nready\n", await Net.HttpExchangeAsync(admin, "GET /readyz HTTP/1.1\r\n\r\n"), StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", await Net.HttpExchangeAsync(admin, "GET /metrics HTTP/1.1\r\n\r\n"), StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 404 Not Found\r\n", await Net.HttpExchangeAsync(admin, "GET /nothing HTTP/1.1\r\n\r\n"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/metrics/x")]
    [InlineData("/healthz/x")]
    [InlineData("/status/x")]
    public async Task AdminPipeline_PathUnderAnEndpoint_IsAnswered404_AsKestrelsRoutingDid(string path)
    {
        await using var provider = AdminServices();
        await using var server = AdminPipelineServer(provider);
        var admin = server.Listen(new IPEndPoint(IPAddress.Loopback, 0)).Port;

        Assert.StartsWith("HTTP/1.1 404 Not Found\r\n", await Net.HttpExchangeAsync(admin, $"GET {path} HTTP/1.1\r\n\r\n"), StringComparison.Ordinal);
    }

    /// <summary>What the host gives the admin pipeline: logging, health checks, metrics.</summary>
    private static ServiceProvider AdminServices()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddHealthChecks();
        MetricsEndpoint.AddMetrics(services);
        return services.BuildServiceProvider();
    }

    /// <summary>The admin server with the host's pipeline (probes, /status, /metrics) behind it, listening nowhere yet.</summary>
    private static AdminHttpServer AdminPipelineServer(ServiceProvider provider)
    {
        var pipeline = AdminEndpoints.CreatePipeline(provider, metrics: true);
        return new AdminHttpServer(
            features => pipeline(new DefaultHttpContext(features) { RequestServices = provider }),
            new AdminHttpServerLimits(),
            TimeProvider.System,
            NullLogger.Instance);
    }

    private static Served Start(RequestDelegate handler, AdminHttpServerLimits? limits = null)
    {
        var server = new AdminHttpServer(
            features => handler(new DefaultHttpContext(features)),
            limits ?? new AdminHttpServerLimits(),
            TimeProvider.System,
            NullLogger.Instance);
        return new Served(server, server.Listen(new IPEndPoint(IPAddress.Loopback, 0)).Port);
    }

    private sealed record Served(AdminHttpServer Server, int Port) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => Server.DisposeAsync();
    }
}
