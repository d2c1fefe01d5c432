using System.Runtime.InteropServices;

namespace FsmGateway.Transport.Linux;

/// <summary>
/// The few Linux system calls the Linux transport makes itself, bound through source-generated <c>LibraryImport</c>
/// (no runtime marshalling stubs: trim- and AOT-safe). Everything else goes through <see cref="System.Net.Sockets.Socket"/>.
/// Each call returns -1 and leaves the error in <see cref="Marshal.GetLastPInvokeError"/>.
/// </summary>
internal static partial class LinuxNative
{
    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int O_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000;
    public const int SOL_SOCKET = 1;
    public const int SO_REUSEADDR = 2;
    public const int SO_REUSEPORT = 15;
    public const uint SPLICE_F_MOVE = 1;
    public const uint SPLICE_F_NONBLOCK = 2;

    [LibraryImport("libc", EntryPoint = "splice", SetLastError = true)]
    public static partial nint Splice(int fdIn, nint offIn, int fdOut, nint offOut, nuint length, uint flags);

    [LibraryImport("libc", EntryPoint = "pipe2", SetLastError = true)]
    public static unsafe partial int Pipe2(int* fds, int flags);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static unsafe partial nint Read(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);
}
