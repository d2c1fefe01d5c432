namespace FsmGateway.Transport.Tests.TestSupport;

/// <summary>A fact that needs <c>/proc/self/fd</c> (Linux) to count open file descriptors; skipped elsewhere.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class ProcFdFactAttribute : FactAttribute
{
    public const string Directory = "/proc/self/fd";

    public ProcFdFactAttribute()
    {
        if (!System.IO.Directory.Exists(Directory))
        {
            Skip = $"{Directory} does not exist on this system, so open file descriptors cannot be counted";
        }
    }

    /// <summary>The number of file descriptors this process has open.</summary>
    /// <returns>The count.</returns>
    public static int Count() => System.IO.Directory.GetFileSystemEntries(Directory).Length;
}
