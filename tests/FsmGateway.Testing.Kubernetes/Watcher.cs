using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace FsmGateway.Testing.Kubernetes;

/// <summary>One open watch: its filter and the queue of serialized event lines its connection writes out (outside the store lock).</summary>
internal sealed class Watcher
{
    private readonly Channel<WatchLine> _lines = Channel.CreateUnbounded<WatchLine>(new UnboundedChannelOptions { SingleReader = false, SingleWriter = true });
    private readonly string? _namespace;
    private readonly Selector _labels;
    private readonly Selector _fields;

    public Watcher(ResourceType type, string? ns, Selector labels, Selector fields, Microsoft.AspNetCore.Http.HttpContext? context)
    {
        Type = type;
        _namespace = ns;
        _labels = labels;
        _fields = fields;
        Context = context;
    }

    public ResourceType Type { get; }

    public Microsoft.AspNetCore.Http.HttpContext? Context { get; }

    public ChannelReader<WatchLine> Reader => _lines.Reader;

    public int Pending => _lines.Reader.Count;

    public bool Matches(JsonObject obj) =>
        (_namespace is null || !Type.Namespaced || FakeStore.Str(FakeStore.Meta(obj), "namespace") == _namespace)
        && _labels.Matches(obj)
        && _fields.Matches(obj);

    /// <summary>A stored change, seen through this watch's filter (an object that stops matching is DELETED for it, one that starts is ADDED).</summary>
    public void Offer(StoredEvent e)
    {
        var now = Matches(e.Object);
        var before = e.Previous is not null && Matches(e.Previous);
        switch (e.Type)
        {
            case "ADDED" when now:
                Enqueue("ADDED", e.Object);
                break;
            case "DELETED" when now:
                Enqueue("DELETED", e.Object);
                break;
            case "MODIFIED" when now && before:
                Enqueue("MODIFIED", e.Object);
                break;
            case "MODIFIED" when now:
                Enqueue("ADDED", e.Object);
                break;
            case "MODIFIED" when before:
                Enqueue("DELETED", e.Object);
                break;
        }
    }

    public void Enqueue(string type, JsonObject obj) =>
        _lines.Writer.TryWrite(new WatchLine(Line(type, FakeStore.Render(Type, obj)), Close: false));

    public byte[] BookmarkLine(long resourceVersion, bool initialEventsEnd = false)
    {
        var metadata = new JsonObject { ["resourceVersion"] = resourceVersion.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        if (initialEventsEnd)
        {
            metadata["annotations"] = new JsonObject { ["k8s.io/initial-events-end"] = "true" };
        }
        return Line("BOOKMARK", new JsonObject { ["kind"] = Type.Kind, ["apiVersion"] = Type.ApiVersion, ["metadata"] = metadata });
    }

    /// <summary>The bookmark that ends the initial events of a <c>sendInitialEvents=true</c> watch (a "watch list").</summary>
    public void EnqueueInitialEventsEnd(long resourceVersion) =>
        _lines.Writer.TryWrite(new WatchLine(BookmarkLine(resourceVersion, initialEventsEnd: true), Close: false));

    /// <summary>An ERROR event carrying <paramref name="status"/>, then the end of the stream.</summary>
    public void Fail(JsonObject status)
    {
        _lines.Writer.TryWrite(new WatchLine(Line("ERROR", status), Close: true));
        _lines.Writer.TryComplete();
    }

    /// <summary>Ends the stream cleanly after what is queued.</summary>
    public void Complete() => _lines.Writer.TryComplete();

    private static byte[] Line(string type, JsonObject obj) =>
        System.Text.Encoding.UTF8.GetBytes(new JsonObject { ["type"] = type, ["object"] = obj }.ToJsonString(FakeApiServer.Json) + "\n");
}

internal sealed record WatchLine(byte[] Bytes, bool Close);
