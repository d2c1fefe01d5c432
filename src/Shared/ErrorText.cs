namespace FsmGateway;

/// <summary>
/// An exception as one log-line fragment: its type and message (escaped: an API server's message is input), and the
/// innermost cause's when it adds something (a socket error under an HTTP one). Stacks are for Debug only.
/// Compiled into each package that logs failures (linked source, not a public API).
/// </summary>
internal static class ErrorText
{
    public static string Of(Exception exception)
    {
        var text = $"{exception.GetType().Name}: {LogText.Escape(exception.Message)}";
        var inner = exception.GetBaseException();
        return ReferenceEquals(inner, exception) || exception.Message.Contains(inner.Message, StringComparison.Ordinal)
            ? text
            : $"{text} ({inner.GetType().Name}: {LogText.Escape(inner.Message)})";
    }
}
