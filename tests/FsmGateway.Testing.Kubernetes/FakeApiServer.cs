using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FsmGateway.Testing.Kubernetes;

/// <summary>
/// A stateful fake Kubernetes API server on a loopback socket (plain HTTP), for tests: discovery, CRUD, patch, list paging and
/// selectors, watches with bookmarks and 410 Gone, CRDs, owner-reference garbage collection. The real KubernetesClient and kubectl talk to it.
/// </summary>
public sealed class FakeApiServer : IAsyncDisposable
{
    /// <summary>Output as the real server writes it: quotes as \", not \u0022.</summary>
    internal static readonly System.Text.Json.JsonSerializerOptions Json = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private const string CrdStoreKey = "apiextensions.k8s.io/customresourcedefinitions";
    private static readonly ResourceType CrdType = ResourceType.BuiltIn().Single(t => t.StoreKey == CrdStoreKey);

    private readonly FakeStore _store;
    private readonly FakeApiServerOptions _options;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentQueue<ApiRequest> _requests = new();
    private readonly ConcurrentDictionary<string, (string Username, string[] Audiences)> _tokens = new(StringComparer.Ordinal);
    private readonly Lock _stallGate = new();
    private volatile WebApplication? _app;
    private volatile bool _stalled;
    private volatile TaskCompletionSource _stallChanged = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposed;

    private FakeApiServer(FakeApiServerOptions options)
    {
        _options = options;
        _store = new FakeStore(options);
        Url = new Uri("http://127.0.0.1/");
    }

    /// <summary>Starts a server on 127.0.0.1 and a free port.</summary>
    public static async Task<FakeApiServer> StartAsync(FakeApiServerOptions? options = null)
    {
        var server = new FakeApiServer(options ?? new FakeApiServerOptions());
        await server.ServeAsync(port: 0).ConfigureAwait(false);
        if (server._options.InstallGatewayApiCrds)
        {
            server.InstallGatewayApiCrds();
        }
        return server;
    }

    /// <summary>
    /// Goes down, as an API server that crashes or is restarted: open watches and connections are cut, new
    /// connections are refused. The objects are kept (as etcd keeps them); <see cref="RestartAsync"/> serves them again.
    /// </summary>
    public async Task StopAsync()
    {
        var app = Interlocked.Exchange(ref _app, null);
        if (app is null)
        {
            return;
        }

        DropWatches();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await app.StopAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        await app.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Serves again after <see cref="StopAsync"/>, on the same port. With <paramref name="forgetHistory"/> (the
    /// default) the watch history is gone, as in a restarted API server's watch cache: a watch resuming from a
    /// resourceVersion seen before gets 410 Gone and must list again.
    /// </summary>
    public async Task RestartAsync(bool forgetHistory = true)
    {
        if (_app is not null)
        {
            throw new InvalidOperationException("the fake API server is running; stop it first");
        }

        if (forgetHistory)
        {
            Compact();
        }

        await ServeAsync(Url.Port).ConfigureAwait(false);
    }

    /// <summary>Whether the server is serving (started and not stopped).</summary>
    public bool IsRunning => _app is not null;

    private async Task ServeAsync(int port)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, port);
            k.AddServerHeader = false;
        });
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(3));
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.Run(HandleAsync);
        await app.StartAsync().ConfigureAwait(false);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _app = app;
        Url = new Uri(address.Replace("[::1]", "127.0.0.1", StringComparison.Ordinal).TrimEnd('/') + "/");
    }

    /// <summary>The server's base address, e.g. <c>http://127.0.0.1:41234/</c>.</summary>
    public Uri Url { get; private set; }

    /// <summary>The current (global) resourceVersion.</summary>
    public long ResourceVersion => _store.ResourceVersion;

    /// <summary>Every request handled so far, in order (a watch is logged when it starts).</summary>
    public IReadOnlyList<ApiRequest> Requests => [.. _requests];

    /// <summary>
    /// The first logged request that <paramref name="match"/> accepts, once it has been handled (a watch: once it has
    /// started); fails after <paramref name="timeout"/> (default 30 s) with the requests seen so far.
    /// </summary>
    public async Task<ApiRequest> WaitForRequestAsync(Func<ApiRequest, bool> match, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(match);
        var seen = new TaskCompletionSource<ApiRequest>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnRequest(ApiRequest request)
        {
            if (match(request))
            {
                seen.TrySetResult(request);
            }
        }

        RequestHandled += OnRequest;
        try
        {
            // Subscribed first, then the log: a request handled in between is found by one or the other.
            if (_requests.FirstOrDefault(match) is { } already)
            {
                return already;
            }

            try
            {
                return await seen.Task.WaitAsync(timeout ?? TimeSpan.FromSeconds(30)).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                throw new TimeoutException($"No matching request within {timeout ?? TimeSpan.FromSeconds(30)}; requests: {string.Join(", ", _requests.Select(r => $"{r.Verb} {r.Path}"))}");
            }
        }
        finally
        {
            RequestHandled -= OnRequest;
        }
    }

    /// <summary>
    /// Fault injection: called before every resource request and every discovery request (those with an empty
    /// <see cref="ApiRequest.Resource"/>; <see cref="ApiRequest.StatusCode"/> is 0); a returned exception
    /// is the response (e.g. <c>new FakeApiException(500, "InternalError", "boom")</c> or 429 TooManyRequests), null lets it through.
    /// </summary>
    public Func<ApiRequest, FakeApiException?>? FailRequest { get; set; }

    /// <summary>
    /// Fault injection for watches: called when a watch starts; a returned exception is sent as the watch's ERROR
    /// event (a 200 response whose only event is ERROR, then the end of the stream), as kube-apiserver reports an
    /// error that arises after the watch began. Null lets the watch through.
    /// </summary>
    public Func<ApiRequest, FakeApiException?>? FailWatch { get; set; }

    /// <summary>Raised (on the request's thread) for every logged request.</summary>
    public event Action<ApiRequest>? RequestHandled;

    /// <summary>Writes a kubeconfig (cluster server = <see cref="Url"/>, user token = the configured token, current context) and returns <paramref name="path"/>.</summary>
    public string WriteKubeconfig(string path)
    {
        var user = _options.Token is null ? "      {}" : $"      token: {_options.Token}";
        File.WriteAllText(path, $"""
            apiVersion: v1
            kind: Config
            clusters:
              - name: fake
                cluster:
                  server: {Url.ToString().TrimEnd('/')}
            users:
              - name: fake
                user:
            {user}
            contexts:
              - name: fake
                context:
                  cluster: fake
                  user: fake
                  namespace: default
            current-context: fake

            """);
        return path;
    }

    /// <summary>A client configuration for this server (and its token, if any).</summary>
    public k8s.KubernetesClientConfiguration ClientConfiguration() => new()
    {
        Host = Url.ToString().TrimEnd('/'),
        AccessToken = _options.Token,
        Namespace = "default",
    };

    /// <summary>A real KubernetesClient for this server.</summary>
    public k8s.IKubernetes CreateClient() => new k8s.Kubernetes(ClientConfiguration());

    // ---- CRDs ----

    /// <summary>
    /// Installs the Gateway API CRDs: gatewayclasses (cluster) and gateways at v1 (stored) and v1beta1, tcproutes at
    /// <paramref name="tcpRouteVersion"/>, referencegrants at <paramref name="referenceGrantVersion"/>; all but referencegrants have a status subresource.
    /// </summary>
    public void InstallGatewayApiCrds(string tcpRouteVersion = "v1", string referenceGrantVersion = "v1")
    {
        const string g = "gateway.networking.k8s.io";
        ApplyCrd(Crd(g, "gatewayclasses", "gatewayclass", "GatewayClass", namespaced: false, status: true, ["gc"], "v1", "v1beta1"));
        ApplyCrd(Crd(g, "gateways", "gateway", "Gateway", namespaced: true, status: true, ["gtw"], "v1", "v1beta1"));
        ApplyCrd(Crd(g, "tcproutes", "tcproute", "TCPRoute", namespaced: true, status: true, [], tcpRouteVersion));
        ApplyCrd(Crd(g, "referencegrants", "referencegrant", "ReferenceGrant", namespaced: true, status: false, ["refgrant"], referenceGrantVersion));
    }

    /// <summary>
    /// Installs the policy CRDs: FSM's healthcheckpolicies and backendlbpolicies (<c>gateway.flomesh.io/v1alpha2</c>)
    /// and our backendtrafficpolicies (<c>gateway.fsmgateway.io/v1alpha1</c>), each with a status subresource.
    /// </summary>
    public void InstallPolicyCrds()
    {
        ApplyCrd(Crd("gateway.flomesh.io", "healthcheckpolicies", "healthcheckpolicy", "HealthCheckPolicy", namespaced: true, status: true, ["hckpolicy"], "v1alpha2"));
        ApplyCrd(Crd("gateway.flomesh.io", "backendlbpolicies", "backendlbpolicy", "BackendLBPolicy", namespaced: true, status: true, ["blbpolicy"], "v1alpha2"));
        ApplyCrd(Crd("gateway.fsmgateway.io", "backendtrafficpolicies", "backendtrafficpolicy", "BackendTrafficPolicy", namespaced: true, status: true, ["btp"], "v1alpha1"));
    }

    /// <summary>
    /// Installs the client policy CRDs: our clienttrafficpolicies, FSM's routerulefilterpolicies (<c>v1alpha2</c>) and
    /// first-generation ratelimitpolicies (<c>v1alpha1</c>), and FSM's extension kinds (listenerfilters, filters,
    /// concurrencylimits, iprestrictions), each with a status subresource.
    /// </summary>
    public void InstallClientPolicyCrds()
    {
        ApplyCrd(Crd("gateway.fsmgateway.io", "clienttrafficpolicies", "clienttrafficpolicy", "ClientTrafficPolicy", namespaced: true, status: true, ["fgctp"], "v1alpha1"));
        ApplyCrd(Crd("gateway.flomesh.io", "routerulefilterpolicies", "routerulefilterpolicy", "RouteRuleFilterPolicy", namespaced: true, status: true, ["rfpolicy"], "v1alpha2"));
        ApplyCrd(Crd("gateway.flomesh.io", "ratelimitpolicies", "ratelimitpolicy", "RateLimitPolicy", namespaced: true, status: true, ["ratelimit"], "v1alpha1"));
        const string e = "extension.gateway.flomesh.io";
        ApplyCrd(Crd(e, "listenerfilters", "listenerfilter", "ListenerFilter", namespaced: true, status: true, [], "v1alpha1"));
        ApplyCrd(Crd(e, "filters", "filter", "Filter", namespaced: true, status: true, [], "v1alpha1"));
        ApplyCrd(Crd(e, "concurrencylimits", "concurrencylimit", "ConcurrencyLimit", namespaced: true, status: true, [], "v1alpha1"));
        ApplyCrd(Crd(e, "iprestrictions", "iprestriction", "IPRestriction", namespaced: true, status: true, [], "v1alpha1"));
    }

    /// <summary>Deletes the CRD <c>{plural}.{group}</c>: its versions leave discovery, its objects are deleted and its watches end.</summary>
    public void RemoveCrd(string group, string plural) => _store.Delete(CrdType, null, plural + "." + group);

    /// <summary>A CustomResourceDefinition object (schema: anything goes) that <see cref="Apply"/> or an HTTP POST can install.</summary>
    public static JsonObject Crd(string group, string plural, string singular, string kind, bool namespaced, bool status, IReadOnlyList<string> shortNames, params string[] versions)
    {
        ArgumentNullException.ThrowIfNull(versions);
        var list = new JsonArray();
        for (var i = 0; i < versions.Length; i++)
        {
            var v = new JsonObject
            {
                ["name"] = versions[i],
                ["served"] = true,
                ["storage"] = i == 0,
                ["schema"] = new JsonObject
                {
                    ["openAPIV3Schema"] = new JsonObject { ["type"] = "object", ["x-kubernetes-preserve-unknown-fields"] = true },
                },
            };
            if (status)
            {
                v["subresources"] = new JsonObject { ["status"] = new JsonObject() };
            }
            list.Add(v);
        }
        var names = new JsonObject
        {
            ["plural"] = plural,
            ["singular"] = singular,
            ["kind"] = kind,
            ["listKind"] = kind + "List",
        };
        if (shortNames.Count > 0)
        {
            names["shortNames"] = new JsonArray([.. shortNames.Select(s => (JsonNode?)JsonValue.Create(s))]);
        }
        return new JsonObject
        {
            ["apiVersion"] = "apiextensions.k8s.io/v1",
            ["kind"] = "CustomResourceDefinition",
            ["metadata"] = new JsonObject { ["name"] = plural + "." + group },
            ["spec"] = new JsonObject
            {
                ["group"] = group,
                ["names"] = names,
                ["scope"] = namespaced ? "Namespaced" : "Cluster",
                ["versions"] = list,
            },
        };
    }

    private void ApplyCrd(JsonObject crd) => Apply(crd);

    // ---- store access (server side, same logic as HTTP) ----

    /// <summary>
    /// Creates the object, or replaces everything but its status (kept unless <paramref name="obj"/> has one) like <c>kubectl apply</c>;
    /// bumps resourceVersion, sends watch events, bumps generation when anything but metadata and status changes.
    /// </summary>
    public JsonObject Apply(JsonObject obj, string? defaultNamespace = null)
    {
        ArgumentNullException.ThrowIfNull(obj);
        var t = TypeOf(obj);
        var body = (JsonObject)obj.DeepClone();
        var meta = FakeStore.Meta(body);
        meta.Remove("resourceVersion");
        var ns = t.Namespaced ? FakeStore.Str(meta, "namespace") ?? defaultNamespace ?? "default" : null;
        var name = FakeStore.Str(meta, "name");
        lock (_store.Gate)
        {
            return !string.IsNullOrEmpty(name) && _store.TryGet(t, ns, name) is not null
                ? _store.Update(t, ns, name, body, statusOnly: false, keepStatus: true)
                : _store.Create(t, ns, body, keepStatus: true);
        }
    }

    /// <summary><see cref="Apply"/> for every non-empty document of a (multi-document) YAML text; a <c>List</c> applies its items.</summary>
    public IReadOnlyList<JsonObject> ApplyYaml(string yaml, string? defaultNamespace = null)
    {
        var result = new List<JsonObject>();
        foreach (var doc in JsonPatching.YamlDocuments(yaml))
        {
            if (doc is JsonObject { } o && FakeStore.Str(o, "kind") is { } kind && kind.EndsWith("List", StringComparison.Ordinal) && o["items"] is JsonArray items)
            {
                result.AddRange(items.OfType<JsonObject>().Select(i => Apply(i, defaultNamespace)));
            }
            else if (doc is JsonObject obj)
            {
                result.Add(Apply(obj, defaultNamespace));
            }
        }
        return result;
    }

    /// <summary>The object (a copy), or null.</summary>
    /// <summary>
    /// Makes <paramref name="token"/> a valid token of ServiceAccount <paramref name="ns"/>/<paramref name="serviceAccount"/>
    /// for <paramref name="audiences"/> (none: the API server's own, <c>https://kubernetes.default.svc.cluster.local</c>),
    /// as the kubelet's projected tokens are: a <c>TokenReview</c> of it answers <c>system:serviceaccount:NS:NAME</c>
    /// when the review asks for one of those audiences, and unauthenticated otherwise.
    /// </summary>
    public void AddServiceAccountToken(string token, string ns, string serviceAccount, params string[] audiences) =>
        _tokens[token] = ($"system:serviceaccount:{ns}:{serviceAccount}", audiences.Length == 0 ? [DefaultAudience] : audiences);

    /// <summary>
    /// A token shaped as the kubelet's projected ones are, a JWT (the controller refuses anything else without asking
    /// the API server), named <paramref name="name"/> in its subject; the same name gives the same token. Its
    /// signature is not a real one: this server reviews tokens by value.
    /// </summary>
    public static string ProjectedToken(string name)
    {
        static string Part(string json) => System.Buffers.Text.Base64Url.EncodeToString(System.Text.Encoding.UTF8.GetBytes(json));
        return $"{Part("""{"alg":"RS256","kid":"fake"}""")}.{Part(System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string> { ["sub"] = name }))}.c2lnbmF0dXJl";
    }

    /// <summary>Makes <paramref name="token"/> invalid from now on (as an expired or deleted-ServiceAccount token is).</summary>
    public void RemoveToken(string token) => _tokens.TryRemove(token, out _);

    /// <summary>Every token a TokenReview asked about, in order (known or not).</summary>
    public IReadOnlyList<string> ReviewedTokens => [.. _reviewedTokens];

    private readonly ConcurrentQueue<string> _reviewedTokens = new();

    private const string DefaultAudience = "https://kubernetes.default.svc.cluster.local";

    /// <summary>A TokenReview, as kube-apiserver answers it: authenticated only for a known token and an audience it was made for.</summary>
    private JsonObject Review(JsonObject review)
    {
        var spec = review["spec"] as JsonObject ?? throw FakeApiException.BadRequest("TokenReview: spec is required");
        var token = spec["token"]?.GetValue<string>() ?? string.Empty;
        _reviewedTokens.Enqueue(token);
        var wanted = (spec["audiences"] as JsonArray)?.Select(a => a!.GetValue<string>()).ToArray() is { Length: > 0 } asked ? asked : [DefaultAudience];
        JsonObject status;
        if (!_tokens.TryGetValue(token, out var known))
        {
            status = new JsonObject { ["authenticated"] = false, ["error"] = "[invalid bearer token, token lookup failed]" };
        }
        else if (known.Audiences.Intersect(wanted, StringComparer.Ordinal).ToArray() is not { Length: > 0 } audiences)
        {
            status = new JsonObject { ["authenticated"] = false, ["error"] = $"[invalid bearer token, token audiences [{string.Join(" ", known.Audiences)}] is invalid for the target audiences [{string.Join(" ", wanted)}]]" };
        }
        else
        {
            status = new JsonObject
            {
                ["authenticated"] = true,
                ["user"] = new JsonObject
                {
                    ["username"] = known.Username,
                    ["uid"] = Guid.NewGuid().ToString(),
                    ["groups"] = new JsonArray("system:serviceaccounts", $"system:serviceaccounts:{known.Username.Split(':')[2]}", "system:authenticated"),
                },
                ["audiences"] = new JsonArray([.. audiences.Select(a => (JsonNode?)a)]),
            };
        }

        return new JsonObject
        {
            ["kind"] = "TokenReview",
            ["apiVersion"] = "authentication.k8s.io/v1",
            ["metadata"] = new JsonObject { ["creationTimestamp"] = null },
            ["spec"] = spec.DeepClone(),
            ["status"] = status,
        };
    }

    public JsonObject? Get(string apiVersion, string kind, string? ns, string name) =>
        _store.TryGet(_store.FindByKind(apiVersion, kind), ns, name);

    /// <summary>The objects of a kind (copies), in one namespace or (null) all.</summary>
    public IReadOnlyList<JsonObject> List(string apiVersion, string kind, string? ns = null)
    {
        var list = _store.List(_store.FindByKind(apiVersion, kind), ns, Selector.Everything, Selector.Everything, null, null);
        return [.. ((JsonArray)list["items"]!).Select(i => (JsonObject)i!.DeepClone())];
    }

    /// <summary>Deletes the object and, like the garbage collector, everything it (transitively) owns; false when absent.</summary>
    public bool Delete(string apiVersion, string kind, string? ns, string name) =>
        _store.Delete(_store.FindByKind(apiVersion, kind), ns, name) is not null;

    /// <summary>Replaces the status, as a controller would through the status subresource (generation unchanged).</summary>
    public JsonObject SetStatus(string apiVersion, string kind, string? ns, string name, JsonNode status) =>
        _store.Update(_store.FindByKind(apiVersion, kind), ns, name, new JsonObject { ["status"] = status?.DeepClone() }, statusOnly: true);

    private ResourceType TypeOf(JsonObject obj) =>
        _store.FindByKind(
            FakeStore.Str(obj, "apiVersion") ?? throw new ArgumentException("the object has no apiVersion", nameof(obj)),
            FakeStore.Str(obj, "kind") ?? throw new ArgumentException("the object has no kind", nameof(obj)));

    // ---- watch control ----

    /// <summary>Aborts every open watch connection (TCP-level), without a final event.</summary>
    public void DropWatches()
    {
        foreach (var w in _store.Watchers())
        {
            w.Context?.Abort();
        }
    }

    /// <summary>While stalled, open watches get nothing (no events, no bookmarks) and stay open; events are delivered once unstalled.</summary>
    public void StallWatches(bool stalled)
    {
        lock (_stallGate)
        {
            _stalled = stalled;
            var old = _stallChanged;
            _stallChanged = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            old.TrySetResult();
        }
    }

    /// <summary>Forgets the event history: older resourceVersions get 410 Gone and every open watch gets a 410 ERROR event and ends.</summary>
    public void Compact() => _store.Compact();

    // ---- HTTP ----

    private sealed class RequestInfo
    {
        public string Verb { get; set; } = "get";
        public string Group { get; set; } = "";
        public string Version { get; set; } = "";
        public string Resource { get; set; } = "";
        public string? Subresource { get; set; }
        public string? Namespace { get; set; }
        public string? Name { get; set; }
        public bool Logged { get; set; }
    }

    private void Log(HttpContext ctx, RequestInfo info, int status)
    {
        if (info.Logged)
        {
            return;
        }
        info.Logged = true;
        var entry = new ApiRequest(info.Verb, info.Group, info.Version, info.Resource, info.Subresource, info.Namespace, info.Name, status)
        {
            UserAgent = ctx.Request.Headers.UserAgent.ToString(),
            Path = ctx.Request.Path + ctx.Request.QueryString,
            Method = ctx.Request.Method,
        };
        _requests.Enqueue(entry);
        RequestHandled?.Invoke(entry);
    }

    private async Task HandleAsync(HttpContext ctx)
    {
        var info = new RequestInfo();
        try
        {
            // As with anonymous auth on a real server, /version and the health endpoints are public (kubectl's version dispatcher asks /version without credentials).
            if (_options.Token is { } token && ctx.Request.Headers.Authorization.ToString() != "Bearer " + token
                && ctx.Request.Path.Value is not ("/version" or "/version/" or "/healthz" or "/livez" or "/readyz"))
            {
                await WriteJsonAsync(ctx, 401, FakeApiException.Status(401, "Unauthorized", "Unauthorized")).ConfigureAwait(false);
                return;
            }
            await RouteAsync(ctx, info).ConfigureAwait(false);
        }
        catch (FakeApiException e) when (!ctx.Response.HasStarted)
        {
            await WriteJsonAsync(ctx, e.Code, e.ToStatus()).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested || _stopping.IsCancellationRequested)
        {
        }
        catch (IOException)
        {
        }
#pragma warning disable CA1031 // a bug in the fake becomes a 500 with a Status naming it, not a dropped connection
        catch (Exception e) when (!ctx.Response.HasStarted)
#pragma warning restore CA1031
        {
            await WriteJsonAsync(ctx, 500, FakeApiException.Status(500, "InternalError", "fake API server: " + e)).ConfigureAwait(false);
        }
        finally
        {
            Log(ctx, info, ctx.Response.StatusCode);
        }
    }

    private async Task RouteAsync(HttpContext ctx, RequestInfo info)
    {
        var path = ctx.Request.Path.Value ?? "/";
        var trimmed = path.Length > 1 ? path.TrimEnd('/') : path;
        var get = HttpMethods.IsGet(ctx.Request.Method);
        var discovery = get && (trimmed is "/api" or "/apis" or "/api/v1" || (trimmed.StartsWith("/apis/", StringComparison.Ordinal) && trimmed.Count(c => c == '/') <= 3));
        if (discovery && FailRequest?.Invoke(new ApiRequest("get", "", "", "", null, null, null, 0)
            {
                UserAgent = ctx.Request.Headers.UserAgent.ToString(),
                Path = ctx.Request.Path + ctx.Request.QueryString,
                Method = ctx.Request.Method,
            }) is { } failed)
        {
            throw failed;
        }

        switch (trimmed)
        {
            case "/version" when get:
                await WriteJsonAsync(ctx, 200, new JsonObject
                {
                    ["major"] = "1",
                    ["minor"] = "32",
                    ["gitVersion"] = "v1.32.0-fake",
                    ["gitCommit"] = "0000000000000000000000000000000000000000",
                    ["gitTreeState"] = "clean",
                    ["buildDate"] = "2025-01-01T00:00:00Z",
                    ["goVersion"] = "go1.23.0",
                    ["compiler"] = "gc",
                    ["platform"] = "linux/amd64",
                }).ConfigureAwait(false);
                return;
            case "/healthz" or "/livez" or "/readyz" when get:
                ctx.Response.ContentType = "text/plain";
                await ctx.Response.WriteAsync("ok").ConfigureAwait(false);
                return;
            case "/api" when get:
                await WriteJsonAsync(ctx, 200, new JsonObject
                {
                    ["kind"] = "APIVersions",
                    ["versions"] = new JsonArray("v1"),
                    ["serverAddressByClientCIDRs"] = new JsonArray(new JsonObject { ["clientCIDR"] = "0.0.0.0/0", ["serverAddress"] = Url.Authority }),
                }).ConfigureAwait(false);
                return;
            case "/api/v1" when get:
                await WriteJsonAsync(ctx, 200, ResourceList("", "v1")).ConfigureAwait(false);
                return;
            case "/apis" when get:
                await WriteJsonAsync(ctx, 200, GroupList()).ConfigureAwait(false);
                return;
        }
        var seg = trimmed.Split('/');
        if (get && seg.Length == 3 && seg[1] == "apis")
        {
            var group = GroupList()["groups"]!.AsArray().FirstOrDefault(g => g!["name"]!.ToString() == seg[2]) ?? throw FakeApiException.UnknownResource();
            var copy = (JsonObject)group.DeepClone();
            copy["kind"] = "APIGroup";
            copy["apiVersion"] = "v1";
            await WriteJsonAsync(ctx, 200, copy).ConfigureAwait(false);
            return;
        }
        if (get && seg.Length == 4 && seg[1] == "apis")
        {
            await WriteJsonAsync(ctx, 200, ResourceList(seg[2], seg[3])).ConfigureAwait(false);
            return;
        }
        await ResourceAsync(ctx, info, seg).ConfigureAwait(false);
    }

    private JsonObject ResourceList(string group, string version)
    {
        var types = _store.Types().Where(t => t.Group == group && t.Version == version).OrderBy(t => t.Plural, StringComparer.Ordinal).ToList();
        if (types.Count == 0)
        {
            throw FakeApiException.UnknownResource();
        }
        var resources = new JsonArray();
        foreach (var t in types)
        {
            var r = new JsonObject
            {
                ["name"] = t.Plural,
                ["singularName"] = t.Singular,
                ["namespaced"] = t.Namespaced,
                ["kind"] = t.Kind,
                ["verbs"] = new JsonArray([.. ResourceType.Verbs.Select(v => (JsonNode?)JsonValue.Create(v))]),
            };
            if (t.ShortNames.Count > 0)
            {
                r["shortNames"] = new JsonArray([.. t.ShortNames.Select(s => (JsonNode?)JsonValue.Create(s))]);
            }
            resources.Add(r);
            if (t.HasStatus)
            {
                resources.Add(new JsonObject
                {
                    ["name"] = t.Plural + "/status",
                    ["singularName"] = "",
                    ["namespaced"] = t.Namespaced,
                    ["kind"] = t.Kind,
                    ["verbs"] = new JsonArray("get", "patch", "update"),
                });
            }
        }
        return new JsonObject
        {
            ["kind"] = "APIResourceList",
            ["apiVersion"] = "v1",
            ["groupVersion"] = group.Length == 0 ? version : group + "/" + version,
            ["resources"] = resources,
        };
    }

    private JsonObject GroupList()
    {
        var groups = new JsonArray();
        foreach (var byGroup in _store.Types().Where(t => t.Group.Length > 0).GroupBy(t => t.Group))
        {
            var versions = byGroup.Select(t => t.Version).Distinct().Order(Comparer<string>.Create(ResourceType.ComparePriority)).ToList();
            JsonObject Gv(string v) => new() { ["groupVersion"] = byGroup.Key + "/" + v, ["version"] = v };
            groups.Add(new JsonObject
            {
                ["name"] = byGroup.Key,
                ["versions"] = new JsonArray([.. versions.Select(v => (JsonNode?)Gv(v))]),
                ["preferredVersion"] = Gv(versions[0]),
            });
        }
        return new JsonObject { ["kind"] = "APIGroupList", ["apiVersion"] = "v1", ["groups"] = groups };
    }

    private async Task ResourceAsync(HttpContext ctx, RequestInfo info, string[] seg)
    {
        string group;
        string version;
        int first;
        if (seg.Length >= 4 && seg[1] == "api" && seg[2] == "v1")
        {
            (group, version, first) = ("", "v1", 3);
        }
        else if (seg.Length >= 5 && seg[1] == "apis")
        {
            (group, version, first) = (seg[2], seg[3], 4); // "/apis//v1/..." is an alias of "/api/v1/..."
        }
        else
        {
            info.Resource = "";
            throw FakeApiException.UnknownResource();
        }
        info.Group = group;
        info.Version = version;
        var rest = seg[first..];
        var legacyWatch = rest.Length > 0 && rest[0] == "watch";
        if (legacyWatch)
        {
            rest = rest[1..];
        }
        string? ns = null;
        if (rest.Length >= 2 && rest[0] == "namespaces" && !(group.Length == 0 && (rest.Length == 2 || (rest.Length == 3 && rest[2] is "status" or "finalize"))))
        {
            ns = rest[1];
            rest = rest[2..];
        }
        var method = ctx.Request.Method;
        var query = ctx.Request.Query;
        var watch = legacyWatch || query["watch"] is var w && (w == "true" || w == "1");
        info.Namespace = ns;
        info.Resource = rest.Length > 0 ? rest[0] : "";
        info.Name = rest.Length > 1 ? rest[1] : null;
        info.Subresource = rest.Length > 2 ? rest[2] : null;
        info.Verb = (method, info.Name is null, watch) switch
        {
            ("GET", _, true) => "watch",
            ("GET", true, _) => "list",
            ("GET", false, _) => "get",
            ("POST", _, _) => "create",
            ("PUT", _, _) => "update",
            ("PATCH", _, _) => "patch",
            ("DELETE", true, _) => "deletecollection",
            ("DELETE", false, _) => "delete",
            _ => method.ToLowerInvariant(),
        };
        if (FailRequest?.Invoke(new ApiRequest(info.Verb, group, version, info.Resource, info.Subresource, ns, info.Name, 0)
            {
                UserAgent = ctx.Request.Headers.UserAgent.ToString(),
                Path = ctx.Request.Path + ctx.Request.QueryString,
                Method = method,
            }) is { } injected)
        {
            throw injected;
        }
        if (rest.Length is 0 or > 3)
        {
            throw FakeApiException.UnknownResource();
        }
        var t = _store.Find(group, version, info.Resource) ?? throw FakeApiException.UnknownResource();
        var name = info.Name;
        var sub = info.Subresource;
        if ((!t.Namespaced && ns is not null) || (t.Namespaced && ns is null && name is not null) || (sub is not null && !(sub == "status" && t.HasStatus)))
        {
            throw FakeApiException.UnknownResource();
        }
        var labels = Selector.ParseLabels(query["labelSelector"]);
        var fieldText = query["fieldSelector"].ToString();
        if (name is not null && watch)
        {
            fieldText = fieldText.Length == 0 ? "metadata.name=" + name : fieldText + ",metadata.name=" + name;
        }
        var fields = Selector.ParseFields(fieldText);
        if (t.Plural == "tokenreviews" && t.Group == "authentication.k8s.io")
        {
            if (info.Verb != "create" || name is not null)
            {
                throw new FakeApiException(405, "MethodNotAllowed", $"the server does not allow this method on the requested resource ({method} {t.Plural})");
            }

            var review = await ReadObjectAsync(ctx, allowYaml: false).ConfigureAwait(false);
            CheckKind(t, review);
            await WriteJsonAsync(ctx, 201, Review(review)).ConfigureAwait(false);
            return;
        }

        switch (info.Verb)
        {
            case "watch" when sub is null:
                await WatchAsync(ctx, info, t, ns, labels, fields).ConfigureAwait(false);
                return;
            case "get":
                await WriteJsonAsync(ctx, 200, _store.Get(t, ns, name!)).ConfigureAwait(false);
                return;
            case "list" when sub is null:
            {
                int? limit = int.TryParse(query["limit"], NumberStyles.None, CultureInfo.InvariantCulture, out var l) ? l : null;
                await WriteJsonAsync(ctx, 200, _store.List(t, ns, labels, fields, limit, query["continue"])).ConfigureAwait(false);
                return;
            }
            case "create" when name is null && (ns is not null || !t.Namespaced):
            {
                var body = await ReadObjectAsync(ctx, allowYaml: false).ConfigureAwait(false);
                CheckKind(t, body);
                await WriteJsonAsync(ctx, 201, _store.Create(t, ns, body, manager: ManagedFields.ManagerOf(query["fieldManager"], ctx.Request.Headers.UserAgent))).ConfigureAwait(false);
                return;
            }
            case "update" when name is not null:
            {
                var body = await ReadObjectAsync(ctx, allowYaml: false).ConfigureAwait(false);
                CheckKind(t, body);
                await WriteJsonAsync(ctx, 200, _store.Update(t, ns, name, body, statusOnly: sub == "status", manager: sub == "status" ? null : ManagedFields.ManagerOf(query["fieldManager"], ctx.Request.Headers.UserAgent))).ConfigureAwait(false);
                return;
            }
            case "patch" when name is not null:
            {
                var contentType = ctx.Request.ContentType ?? "";
                var text = await ReadTextAsync(ctx).ConfigureAwait(false);
                var patch = JsonPatching.ParseBody(text, allowYaml: contentType.Contains("yaml", StringComparison.OrdinalIgnoreCase));
                var apply = contentType.StartsWith("application/apply-patch", StringComparison.OrdinalIgnoreCase);
                var manager = apply ? query["fieldManager"].ToString() : ManagedFields.ManagerOf(query["fieldManager"], ctx.Request.Headers.UserAgent);
                var (result, created) = _store.Patch(t, ns, name, contentType, patch, statusOnly: sub == "status", manager, force: query["force"] == "true");
                await WriteJsonAsync(ctx, created ? 201 : 200, result).ConfigureAwait(false);
                return;
            }
            case "delete" when sub is null:
            {
                // DeleteOptions.preconditions.uid, as kube-apiserver checks it: another object of that name is a 409.
                var options = await ReadTextAsync(ctx).ConfigureAwait(false) is { Length: > 0 } text ? JsonNode.Parse(text) : null;
                if (options?["preconditions"]?["uid"]?.GetValue<string>() is { } uid
                    && _store.TryGet(t, ns, name!) is { } current && current["metadata"]?["uid"]?.GetValue<string>() != uid)
                {
                    throw new FakeApiException(409, "Conflict", $"Precondition failed: UID in precondition: {uid}, UID in object meta: {current["metadata"]?["uid"]}", name, t.Group, t.Plural);
                }

                await WriteJsonAsync(ctx, 200, _store.Delete(t, ns, name!) ?? throw FakeApiException.NotFound(t, name!)).ConfigureAwait(false);
                return;
            }
            case "deletecollection" when sub is null:
                await WriteJsonAsync(ctx, 200, _store.DeleteCollection(t, ns, labels, fields)).ConfigureAwait(false);
                return;
            default:
                throw new FakeApiException(405, "MethodNotAllowed", $"the server does not allow this method on the requested resource ({method} {t.Plural})");
        }
    }

    private static void CheckKind(ResourceType t, JsonObject body)
    {
        var kind = FakeStore.Str(body, "kind");
        if (!string.IsNullOrEmpty(kind) && kind != t.Kind)
        {
            throw FakeApiException.BadRequest($"the kind of the provided object ({kind}) does not match the resource ({t.Kind})");
        }
    }

    private async Task WatchAsync(HttpContext ctx, RequestInfo info, ResourceType t, string? ns, Selector labels, Selector fields)
    {
        var query = ctx.Request.Query;
        var bookmarks = query["allowWatchBookmarks"] == "true";
        TimeSpan? timeout = int.TryParse(query["timeoutSeconds"], NumberStyles.None, CultureInfo.InvariantCulture, out var s) && s > 0 ? TimeSpan.FromSeconds(s) : null;
        Watcher watcher;
        if (FailWatch?.Invoke(new ApiRequest(info.Verb, t.Group, t.Version, info.Resource, info.Subresource, ns, info.Name, 200)
            {
                UserAgent = ctx.Request.Headers.UserAgent.ToString(),
                Path = ctx.Request.Path + ctx.Request.QueryString,
                Method = ctx.Request.Method,
            }) is { } failure)
        {
            watcher = new Watcher(t, ns, labels, fields, ctx);
            watcher.Fail(FakeApiException.Status(failure.Code, failure.Reason, failure.Message));
        }
        else
        {
            watcher = _store.Watch(t, ns, labels, fields, query["resourceVersion"], ctx, sendInitialEvents: query["sendInitialEvents"] == "true");
        }

        try
        {
            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = "application/json";
            Log(ctx, info, 200);
            await ctx.Response.StartAsync(ctx.RequestAborted).ConfigureAwait(false);
            await ctx.Response.Body.FlushAsync(ctx.RequestAborted).ConfigureAwait(false);
            using var timeoutCts = new CancellationTokenSource(timeout ?? Timeout.InfiniteTimeSpan);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, _stopping.Token, timeoutCts.Token);
            var token = linked.Token;
            var reader = watcher.Reader;
            var body = ctx.Response.Body;
            var nextBookmark = DateTime.UtcNow + _options.BookmarkInterval;
            Task<bool>? waiting = null;
            while (!token.IsCancellationRequested)
            {
                var stallChanged = _stallChanged;
                if (_stalled)
                {
                    await stallChanged.Task.WaitAsync(token).ConfigureAwait(false);
                    nextBookmark = DateTime.UtcNow + _options.BookmarkInterval;
                    continue;
                }
                if (reader.TryRead(out var line))
                {
                    await body.WriteAsync(line.Bytes, token).ConfigureAwait(false);
                    await body.FlushAsync(token).ConfigureAwait(false);
                    if (line.Close)
                    {
                        break;
                    }
                    continue;
                }
                if (reader.Completion.IsCompleted)
                {
                    break;
                }
                var untilBookmark = nextBookmark - DateTime.UtcNow;
                if (bookmarks && untilBookmark <= TimeSpan.Zero)
                {
                    if (_store.BookmarkVersion(watcher) is { } rv)
                    {
                        await body.WriteAsync(watcher.BookmarkLine(rv), token).ConfigureAwait(false);
                        await body.FlushAsync(token).ConfigureAwait(false);
                        nextBookmark = DateTime.UtcNow + _options.BookmarkInterval;
                    }
                    continue;
                }
                waiting ??= reader.WaitToReadAsync(token).AsTask();
                using (var iteration = CancellationTokenSource.CreateLinkedTokenSource(token))
                {
                    var delay = Task.Delay(bookmarks ? untilBookmark : Timeout.InfiniteTimeSpan, iteration.Token);
                    await Task.WhenAny(waiting, delay, stallChanged.Task).ConfigureAwait(false);
                    await iteration.CancelAsync().ConfigureAwait(false);
                }
                if (waiting.IsCompleted)
                {
                    waiting = null;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // timeoutSeconds elapsed (a clean end), the client went away, or the server stops.
        }
        finally
        {
            _store.Unwatch(watcher);
        }
    }

    private static async Task<string> ReadTextAsync(HttpContext ctx)
    {
        using var reader = new StreamReader(ctx.Request.Body, Encoding.UTF8);
        return await reader.ReadToEndAsync(ctx.RequestAborted).ConfigureAwait(false);
    }

    private static async Task<JsonObject> ReadObjectAsync(HttpContext ctx, bool allowYaml) =>
        JsonPatching.ParseBody(await ReadTextAsync(ctx).ConfigureAwait(false), allowYaml) as JsonObject
            ?? throw FakeApiException.BadRequest("the request body must be a JSON object");

    /// <summary>
    /// Writes a JSON response: with Content-Length, or, above <see cref="FakeApiServerOptions.ChunkedAbove"/>, chunked as
    /// kube-apiserver does, the final (empty) chunk written separately <see cref="FakeApiServerOptions.FinalChunkDelay"/> later.
    /// </summary>
    private async Task WriteJsonAsync(HttpContext ctx, int status, JsonObject body)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        var bytes = Encoding.UTF8.GetBytes(body.ToJsonString(Json));
        if (_options.ChunkedAbove is not { } limit || bytes.Length <= limit)
        {
            ctx.Response.ContentLength = bytes.Length;
            await ctx.Response.Body.WriteAsync(bytes, ctx.RequestAborted).ConfigureAwait(false);
            return;
        }

        // No Content-Length: Kestrel sends the body chunked; the body goes out now, the terminating chunk after the delay.
        await ctx.Response.Body.WriteAsync(bytes, ctx.RequestAborted).ConfigureAwait(false);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted).ConfigureAwait(false);
        await Task.Delay(_options.FinalChunkDelay, ctx.RequestAborted).ConfigureAwait(false);
        await ctx.Response.CompleteAsync().ConfigureAwait(false);
    }

    /// <summary>Stops the server; open watches end at once.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (Interlocked.Exchange(ref _app, null) is { } app)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await app.StopAsync(cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
            await app.DisposeAsync().ConfigureAwait(false);
        }
        _stopping.Dispose();
    }
}
