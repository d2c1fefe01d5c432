namespace FsmGateway.Testing.Kubernetes;

/// <summary>Files of this repository (manifests in <c>deploy/</c>, the seed example) for tests that read them.</summary>
public static class RepoPaths
{
    private static readonly Lazy<string> RootPath = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "FsmGateway.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"FsmGateway.sln not found above {AppContext.BaseDirectory}");
    });

    /// <summary>The repository's root: the folder of <c>FsmGateway.sln</c> above the test binaries.</summary>
    public static string Root => RootPath.Value;

    /// <summary>A path relative to the repository's root, made absolute.</summary>
    /// <param name="relative">E.g. <c>deploy/30-gatewayclass.yaml</c>.</param>
    /// <returns>The absolute path.</returns>
    public static string Of(string relative) => Path.Combine(Root, relative);
}
