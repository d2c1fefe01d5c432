using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace FsmGateway.Transport.AccessLog;

/// <summary>
/// Which file a path or an open handle is: device and inode, from <c>statx(2)</c> (one struct layout on every Linux
/// architecture). Tells the access log that log rotation renamed or deleted its file. Null where unknown: off Linux, a
/// libc without <c>statx</c> (glibc before 2.28, musl before 1.2.5), or a path that does not exist.
/// </summary>
internal readonly partial record struct FileIdentity(uint DevMajor, uint DevMinor, ulong Inode)
{
    private const int AT_FDCWD = -100;
    private const int AT_EMPTY_PATH = 0x1000;
    private const uint STATX_INO = 0x100;
    private const int StatxSize = 256;

    private static volatile bool s_available = OperatingSystem.IsLinux();

    public static FileIdentity? OfPath(string path) => Stat(AT_FDCWD, path, 0);

    public static FileIdentity? OfHandle(SafeFileHandle handle)
    {
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            return Stat((int)handle.DangerousGetHandle(), string.Empty, AT_EMPTY_PATH);
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    private static FileIdentity? Stat(int dirfd, string path, int flags)
    {
        if (!s_available)
        {
            return null;
        }

        var buffer = new byte[StatxSize];
        try
        {
            if (Statx(dirfd, path, flags, STATX_INO, buffer) < 0)
            {
                return null;
            }
        }
        catch (EntryPointNotFoundException)
        {
            s_available = false;
            return null;
        }

        // struct statx: stx_ino (u64) at 32, stx_dev_major (u32) at 136, stx_dev_minor (u32) at 140.
        return new FileIdentity(BitConverter.ToUInt32(buffer, 136), BitConverter.ToUInt32(buffer, 140), BitConverter.ToUInt64(buffer, 32));
    }

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, [Out] byte[] buffer);
}
