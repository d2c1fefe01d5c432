// A small httpbin-compatible backend for the TCP-routing example, on ASP.NET Core's built-in server.
// Listens on http://127.0.0.1:8080 unless --urls says otherwise.
using System.Security.Cryptography;
using System.Text.Json;

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
if (string.IsNullOrEmpty(builder.Configuration["urls"]))
{
    builder.WebHost.UseUrls("http://127.0.0.1:8080");
}

var app = builder.Build();
var json = new JsonSerializerOptions { WriteIndented = true };

// Header names as the client sent them, in httpbin's capitalised form (Host, User-Agent, ...).
static SortedDictionary<string, string> Headers(HttpRequest request) =>
    new(request.Headers.ToDictionary(
        static h => string.Join('-', h.Key.Split('-').Select(static p => p.Length == 0 ? p : char.ToUpperInvariant(p[0]) + p[1..].ToLowerInvariant())),
        static h => h.Value.ToString()), StringComparer.Ordinal);

static string Origin(HttpContext context) => context.Connection.RemoteIpAddress?.ToString() ?? string.Empty;

app.MapGet("/headers", (HttpRequest request) => Results.Json(new { headers = Headers(request) }, json));
app.MapGet("/ip", (HttpContext context) => Results.Json(new { origin = Origin(context) }, json));
app.MapGet("/get", (HttpContext context) => Results.Json(new
{
    args = context.Request.Query.ToDictionary(static q => q.Key, static q => q.Value.ToString()),
    headers = Headers(context.Request),
    origin = Origin(context),
    url = $"{context.Request.Scheme}://{context.Request.Host}{context.Request.Path}{context.Request.QueryString}",
}, json));
app.MapMethods("/status/{code:int}", ["GET", "POST", "PUT", "DELETE", "PATCH"], (int code) =>
    code is >= 100 and <= 599 ? Results.StatusCode(code) : Results.BadRequest("status code must be 100..599"));
app.MapGet("/bytes/{n:int}", (int n) =>
    n is >= 0 and <= 100 * 1024 * 1024 ? Results.Bytes(RandomNumberGenerator.GetBytes(n), "application/octet-stream") : Results.BadRequest("n must be 0..104857600"));
app.MapGet("/delay/{seconds:double}", async (double seconds, HttpContext context) =>
{
    await Task.Delay(TimeSpan.FromSeconds(Math.Clamp(seconds, 0, 10)), context.RequestAborted);
    return Results.Json(new { headers = Headers(context.Request), origin = Origin(context) }, json);
});

app.Run();
