namespace FsmGateway.Host.Tests.Support;

/// <summary>
/// How a test starts <c>fsm-gateway</c>: the build output (<c>dotnet fsm-gateway.dll</c>) by default. With
/// <c>FSM_GATEWAY_EXECUTABLE</c> set to a published executable (the Native AOT data plane of
/// <c>eng/publish.sh</c>), the modes that executable serves run from it instead, so the whole suite checks the AOT
/// build (<c>eng/test.sh</c> does, unless <c>FSM_AOT_SUITE=0</c>). The modes the data plane does not have (docs/adr/0011:
/// <c>controller</c>, and <c>gateway</c> reading the API server) still run from the build output.
/// </summary>
internal static class HostCommand
{
    /// <summary>The variable naming a published executable to test instead of the build output.</summary>
    public const string ExecutableVariable = "FSM_GATEWAY_EXECUTABLE";

    private static readonly string? Executable = Environment.GetEnvironmentVariable(ExecutableVariable) is { Length: > 0 } path
        ? Path.GetFullPath(path)
        : null;

    /// <summary>The framework-dependent build output the test project references.</summary>
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "fsm-gateway.dll");

    /// <summary>The program and the arguments before <paramref name="args"/> that start the host with <paramref name="args"/>.</summary>
    public static (string FileName, string[] Prefix) For(IReadOnlyList<string> args) =>
        Executable is not null && ServedByDataPlane(args) ? (Executable, []) : ("dotnet", [Dll]);

    /// <summary>Whether the data-plane executable has the mode <paramref name="args"/> name (every mode but the KubernetesClient ones).</summary>
    public static bool ServedByDataPlane(IReadOnlyList<string> args) => args.Count == 0 || args[0] switch
    {
        "controller" => false,
        "gateway" => args.Contains("--controller-address"),
        _ => true,
    };
}
