using System.Text.RegularExpressions;
using FsmGateway.Resources;

namespace FsmGateway.Kubernetes.Mapping;

/// <summary>
/// The name rules the API server applies to each kind we read (apimachinery's <c>NameIsDNSSubdomain</c>,
/// <c>NameIsDNSLabel</c>, <c>NameIsDNS1035Label</c>), so a file holds only names a cluster would accept, and no
/// odd name (a newline, a terminal escape) reaches a log line.
/// </summary>
internal static partial class ObjectNames
{
    public enum Rule
    {
        /// <summary>RFC 1123 subdomain: at most 253 characters, dot-separated labels.</summary>
        Subdomain,

        /// <summary>RFC 1123 label: at most 63 characters.</summary>
        Label,

        /// <summary>RFC 1035 label: an RFC 1123 label that starts with a letter.</summary>
        Rfc1035Label,
    }

    /// <summary>The rule for the names of <paramref name="kind"/>: Services and Namespaces are labels, the rest subdomains.</summary>
    public static Rule RuleFor(ResourceKind kind) => kind switch
    {
        ResourceKind.Service => Rule.Rfc1035Label,
        ResourceKind.Namespace => Rule.Label,
        _ => Rule.Subdomain,
    };

    /// <summary>What is wrong with <paramref name="name"/> under <paramref name="rule"/>, or <see langword="null"/> when it is valid.</summary>
    public static string? Problem(Rule rule, string name)
    {
        var (max, valid, what) = rule switch
        {
            Rule.Label => (63, Label().IsMatch(name), "a lowercase RFC 1123 label (letters a-z, digits and '-', starting and ending with a letter or digit"),
            Rule.Rfc1035Label => (63, Rfc1035Label().IsMatch(name), "a lowercase RFC 1035 label (letters a-z, digits and '-', starting with a letter and ending with a letter or digit"),
            _ => (253, Subdomain().IsMatch(name), "a lowercase RFC 1123 subdomain (letters a-z, digits, '-' and '.', starting and ending with a letter or digit"),
        };
        return valid && name.Length <= max ? null : $"'{LogText.Escape(name)}' is not a valid name: it must be {what}, at most {max} characters)";
    }

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\z")]
    private static partial Regex Label();

    [GeneratedRegex(@"^[a-z]([-a-z0-9]*[a-z0-9])?\z")]
    private static partial Regex Rfc1035Label();

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\z")]
    private static partial Regex Subdomain();
}
