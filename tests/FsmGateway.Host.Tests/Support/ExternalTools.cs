namespace FsmGateway.Host.Tests.Support;

/// <summary>Programs the tests use when the machine has them (<c>.ci/run</c> installs them).</summary>
internal static class ExternalTools
{
    /// <summary>The full path of <paramref name="name"/> on PATH, or null.</summary>
    public static string? Find(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);
}
