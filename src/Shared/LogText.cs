using System.Globalization;
using System.Text;

namespace FsmGateway;

/// <summary>
/// Makes text that came from input (file names, object names, YAML snippets, option values) safe to put in a log line
/// or an error message: control characters are escaped, so input cannot break a line or forge one, and long text is
/// cut. Compiled into each package that reports input (linked source, not a public API).
/// </summary>
internal static class LogText
{
    /// <summary>The most characters of one input value that reach a log line.</summary>
    public const int MaxLength = 256;

    /// <summary>The most characters of a composed message (a diagnostic, a list of reasons) that reach a log line.</summary>
    public const int MaxMessageLength = 4096;

    /// <summary>
    /// Returns <paramref name="text"/> with control characters (newlines, tabs, escape sequences, bidirectional
    /// overrides, lone surrogates) written as <c>\n</c>, <c>\t</c> or <c>\u001b</c>, and a backslash as <c>\\</c> (so
    /// an escape in the output always means an escaped character), cut between characters to at most
    /// <see cref="MaxLength"/> characters with a trailing "…".
    /// </summary>
    public static string Escape(string? text) => Escape(text, MaxLength);

    /// <summary>
    /// <see cref="Escape(string?)"/> with another length limit: for text the program composed around input (a
    /// diagnostic, a readiness reason), which may be longer than one input value but must still not forge lines.
    /// </summary>
    public static string Escape(string? text, int maxLength)
    {
        if (string.IsNullOrEmpty(text))
        {
            return text ?? string.Empty;
        }

        if (!NeedsEscaping(text, maxLength))
        {
            return text;
        }

        var builder = new StringBuilder(Math.Min(text.Length, maxLength) + 16);
        var i = 0;
        for (; i < text.Length; i++)
        {
            var c = text[i];
            var pair = char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]);
            var piece = c switch
            {
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                '\\' => "\\\\",
                _ when pair => text.Substring(i, 2),
                _ when IsUnsafe(c) => "\\u" + ((int)c).ToString("x4", CultureInfo.InvariantCulture),
                _ => null,
            };

            // Cut between characters, never inside an escape or a surrogate pair.
            if (builder.Length + (piece?.Length ?? 1) > maxLength)
            {
                break;
            }

            if (piece is null)
            {
                builder.Append(c);
            }
            else
            {
                builder.Append(piece);
                i += pair ? 1 : 0;
            }
        }

        if (i < text.Length)
        {
            builder.Append('…');
        }

        return builder.ToString();
    }

    private static bool NeedsEscaping(string text, int maxLength)
    {
        if (text.Length > maxLength)
        {
            return true;
        }

        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
                continue;
            }

            if (IsUnsafe(c) || c is '\n' or '\r' or '\t' or '\\')
            {
                return true;
            }
        }

        return false;
    }

    // Control characters (C0, DEL, C1), lone surrogates, and the Unicode format characters that reorder or hide text
    // on a terminal (bidi overrides and isolates, zero-width marks, line and paragraph separators).
    private static bool IsUnsafe(char c) =>
        char.IsControl(c)
        || char.IsSurrogate(c)
        || c is '\u2028' or '\u2029' or '\u200b' or '\u200e' or '\u200f' or '\ufeff'
        || c is >= '\u202a' and <= '\u202e'
        || c is >= '\u2066' and <= '\u2069';
}
