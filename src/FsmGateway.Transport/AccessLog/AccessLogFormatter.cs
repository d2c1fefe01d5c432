using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using FsmGateway.Transport.Proxy;

namespace FsmGateway.Transport.AccessLog;

/// <summary>
/// Formats <see cref="AccessLogEntry"/> lines into a reused UTF-8 buffer, on the writer's thread. JSON through
/// <see cref="Utf8JsonWriter"/>; text as <c>key=value</c> pairs with the same keys, in the same order.
/// </summary>
internal sealed class AccessLogFormatter
{
    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true };
    private readonly AccessLogFormat _format;
    private readonly ArrayBufferWriter<byte> _buffer = new(64 * 1024);
    private readonly Utf8JsonWriter _json;

    public AccessLogFormatter(AccessLogFormat format)
    {
        _format = format;
        _json = new Utf8JsonWriter(_buffer, JsonOptions);
    }

    /// <summary>The lines formatted since the last <see cref="Clear"/>.</summary>
    public ReadOnlyMemory<byte> Written => _buffer.WrittenMemory;

    public void Clear() => _buffer.ResetWrittenCount();

    /// <summary>Appends one line (with its newline).</summary>
    public void Append(in AccessLogEntry entry)
    {
        if (_format == AccessLogFormat.Json)
        {
            AppendJson(entry);
        }
        else
        {
            AppendText(entry);
        }

        _buffer.Write("\n"u8);
    }

    private void AppendJson(in AccessLogEntry e)
    {
        _json.Reset(_buffer);
        _json.WriteStartObject();
        _json.WriteString("start_time"u8, e.StartTime.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        _json.WriteString("event"u8, e.Event == AccessLogEvent.Start ? "start"u8 : "end"u8);
        (string? address, int? port) = Split(e.Client);
        WriteStringOrNull("client_address"u8, address);
        WriteNumberOrNull("client_port"u8, port);
        _json.WriteString("gateway"u8, $"{e.Listener.Gateway.Namespace}/{e.Listener.Gateway.Name}");
        _json.WriteString("listener"u8, e.Listener.ListenerName);
        _json.WriteNumber("port"u8, e.Listener.Port);
        WriteStringOrNull("route"u8, e.Listener.Route is { } route ? $"{route.Namespace}/{route.Name}" : null);
        if (e.Event == AccessLogEvent.End)
        {
            WriteStringOrNull("backend"u8, e.Backend is { } backend ? $"{backend.Namespace}/{backend.Name}" : null);
            WriteNumberOrNull("backend_port"u8, e.Backend?.Port);
            WriteStringOrNull("endpoint"u8, e.Endpoint?.ToString());
            if (e.ConnectTime is { } connect)
            {
                _json.WriteNumber("upstream_connect_ms"u8, Math.Round(connect.TotalMilliseconds, 3));
            }
            else
            {
                _json.WriteNull("upstream_connect_ms"u8);
            }

            _json.WriteNumber("duration_ms"u8, Math.Round(e.Duration.TotalMilliseconds, 3));
            _json.WriteNumber("bytes_upstream"u8, e.BytesUpstream);
            _json.WriteNumber("bytes_downstream"u8, e.BytesDownstream);
            _json.WriteString("reason"u8, e.Reason.Text());
            _json.WriteString("closed_by"u8, e.Reason.ClosedBy());
        }

        _json.WriteEndObject();
        _json.Flush();
    }

    private void AppendText(in AccessLogEntry e)
    {
        Pair("start_time", e.StartTime.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture), first: true);
        Pair("event", e.Event == AccessLogEvent.Start ? "start" : "end");
        (string? address, int? port) = Split(e.Client);
        Pair("client_address", address);
        Pair("client_port", port);
        Pair("gateway", $"{e.Listener.Gateway.Namespace}/{e.Listener.Gateway.Name}");
        Pair("listener", e.Listener.ListenerName);
        Pair("port", e.Listener.Port);
        Pair("route", e.Listener.Route is { } route ? $"{route.Namespace}/{route.Name}" : null);
        if (e.Event == AccessLogEvent.End)
        {
            Pair("backend", e.Backend is { } backend ? $"{backend.Namespace}/{backend.Name}" : null);
            Pair("backend_port", e.Backend?.Port);
            Pair("endpoint", e.Endpoint?.ToString());
            Pair("upstream_connect_ms", e.ConnectTime is { } connect ? Math.Round(connect.TotalMilliseconds, 3).ToString(CultureInfo.InvariantCulture) : null);
            Pair("duration_ms", Math.Round(e.Duration.TotalMilliseconds, 3).ToString(CultureInfo.InvariantCulture));
            Pair("bytes_upstream", e.BytesUpstream);
            Pair("bytes_downstream", e.BytesDownstream);
            Pair("reason", e.Reason.Text());
            Pair("closed_by", e.Reason.ClosedBy());
        }
    }

    private void Pair(string key, long? value)
    {
        Key(key, first: false);
        if (value is not { } number)
        {
            _buffer.Write("-"u8);
            return;
        }

        var span = _buffer.GetSpan(20);
        Utf8Formatter.TryFormat(number, span, out var written);
        _buffer.Advance(written);
    }

    /// <summary>A value as is when it has no space, quote, backslash, '=' or control character; quoted and escaped otherwise; "-" when absent.</summary>
    private void Pair(string key, string? value, bool first = false)
    {
        Key(key, first);
        if (value is null)
        {
            _buffer.Write("-"u8);
            return;
        }

        if (value.Length > 0 && !value.Any(static c => c is ' ' or '"' or '\\' or '=' || char.IsControl(c)))
        {
            Utf8(value);
            return;
        }

        // Names come from Kubernetes objects and cannot hold these; a hand-written manifest for `run` still might.
        _buffer.Write("\""u8);
        Utf8(LogText.Escape(value, int.MaxValue).Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal));
        _buffer.Write("\""u8);
    }

    private void Key(string key, bool first)
    {
        if (!first)
        {
            _buffer.Write(" "u8);
        }

        Utf8(key);
        _buffer.Write("="u8);
    }

    private void Utf8(string text)
    {
        var span = _buffer.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        _buffer.Advance(Encoding.UTF8.GetBytes(text, span));
    }

    private void WriteStringOrNull(ReadOnlySpan<byte> name, string? value)
    {
        if (value is null)
        {
            _json.WriteNull(name);
        }
        else
        {
            _json.WriteString(name, value);
        }
    }

    private void WriteNumberOrNull(ReadOnlySpan<byte> name, int? value)
    {
        if (value is { } number)
        {
            _json.WriteNumber(name, number);
        }
        else
        {
            _json.WriteNull(name);
        }
    }

    private static (string? Address, int? Port) Split(EndPoint? client) => client switch
    {
        IPEndPoint ip => ((ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address).ToString(), ip.Port),
        null => (null, null),
        var other => (other.ToString(), null),
    };
}
