using FsmGateway.Configuration;
using FsmGateway.Kubernetes.Manifests;

namespace FsmGateway.Host.Cli;

/// <summary>
/// The config <c>run</c> serves when given none: <c>samples/tcp-routing</c>, compiled into the host. The FSM guide's
/// Gateway (listeners on 8000 and 8001) and TCPRoute, with Service httpbin:8080 backed by 127.0.0.1:8080.
/// </summary>
internal static class EmbeddedExample
{
    public static IConfigSource CreateSource(string defaultNamespace)
    {
        var assembly = typeof(EmbeddedExample).Assembly;
        var resources = assembly.GetManifestResourceNames()
            .Where(static n => n.StartsWith("samples/tcp-routing/", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .SelectMany(name =>
            {
                using var stream = assembly.GetManifestResourceStream(name)!;
                using var reader = new StreamReader(stream);
                var set = ManifestReader.ReadText(reader.ReadToEnd(), name, defaultNamespace);
                return set.Succeeded ? set.Resources : throw new InvalidOperationException($"The embedded example is broken: {string.Join("; ", set.Errors)}");
            });
        return new InMemoryConfigSource("embedded-example", resources);
    }
}
