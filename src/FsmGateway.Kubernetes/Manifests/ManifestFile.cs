using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace FsmGateway.Kubernetes.Manifests;

/// <summary>
/// Reads one manifest file so that no file can hang or exhaust the reader: only regular files are read (symbolic
/// links are followed to a regular file only; a link loop is a problem, not a hang), never more than a size cap, and
/// on Linux a file is opened without blocking (<c>O_NONBLOCK</c>) after its type was checked, so a FIFO swapped in
/// between the check and the open cannot block either. A problem is returned as text, never thrown.
/// </summary>
/// <remarks>
/// .NET has no API for a file's type (FIFO, device, socket) and opens a FIFO with a blocking <c>open(2)</c>, so on
/// Linux this calls <c>statx(2)</c> (one struct layout on every architecture) and <c>open(2)</c> from libc. Elsewhere,
/// or where libc has no <c>statx</c>, it falls back to .NET's own file API; the caller's read timeout then guards
/// against a read that blocks.
/// </remarks>
internal static partial class ManifestFile
{
    /// <summary>What reading one file gave: its bytes, or a problem, or that it is gone.</summary>
    /// <param name="Bytes">The file's content, when it was read.</param>
    /// <param name="Problem">Why it was not read, when it was not (and is not simply gone).</param>
    internal readonly record struct Outcome(byte[]? Bytes, string? Problem)
    {
        /// <summary>Whether the file no longer exists (removed between listing and reading).</summary>
        public bool Missing => Bytes is null && Problem is null;

        public static Outcome Gone => default;

        public static Outcome Read(byte[] bytes) => new(bytes, null);

        public static Outcome Failed(string problem) => new(null, problem);
    }

    /// <summary>Reads <paramref name="path"/>'s bytes.</summary>
    /// <param name="path">The file; a symbolic link is followed to a regular file only.</param>
    /// <param name="maxBytes">The most bytes read; a larger file is a problem naming the cap.</param>
    /// <returns>The text, a problem, or <see cref="Outcome.Missing"/>.</returns>
    public static Outcome Read(string path, long maxBytes)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (OperatingSystem.IsLinux() && s_statxAvailable)
        {
            try
            {
                return ReadLinux(path, maxBytes);
            }
            catch (EntryPointNotFoundException)
            {
                // A libc without statx (glibc before 2.28, musl before 1.2.5).
                s_statxAvailable = false;
            }
        }

        return ReadPortable(path, maxBytes);
    }

    private static volatile bool s_statxAvailable = true;

    private static Outcome ReadLinux(string path, long maxBytes)
    {
        var status = StatPath(path, followLinks: true, out var errno);
        if (status is null)
        {
            if (errno == ENOSYS)
            {
                s_statxAvailable = false;
                return ReadPortable(path, maxBytes);
            }

            return Problem(path, errno);
        }

        if (TypeProblem(status.Value) is { } notRegular)
        {
            return Outcome.Failed(notRegular);
        }

        if (status.Value.Size > (ulong)maxBytes)
        {
            return Outcome.Failed(TooLarge((long)Math.Min(status.Value.Size, long.MaxValue), maxBytes));
        }

        // O_NONBLOCK: should the file have become a FIFO since the check, opening it still returns at once.
        int fd;
        do
        {
            fd = Open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
            errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        }
        while (fd < 0 && errno == EINTR);

        if (fd < 0)
        {
            return Problem(path, errno);
        }

        using var handle = new SafeFileHandle((nint)fd, ownsHandle: true);
        var opened = StatHandle(fd, out errno);
        if (opened is null)
        {
            return Outcome.Failed(Describe(errno));
        }

        if (TypeProblem(opened.Value) is { } swapped)
        {
            return Outcome.Failed(swapped);
        }

        return ReadCapped(handle, maxBytes);
    }

    /// <summary>Everywhere else: .NET's API, which can tell links, folders and sizes apart but not FIFOs or devices.</summary>
    private static Outcome ReadPortable(string path, long maxBytes)
    {
        try
        {
            var info = new FileInfo(path);
            if (info.LinkTarget is not null)
            {
                // Throws on a loop ("too many levels of symbolic links").
                var target = info.ResolveLinkTarget(returnFinalTarget: true);
                if (target is null || !target.Exists)
                {
                    return Outcome.Failed("a symbolic link to nothing (its target does not exist)");
                }

                if (target is DirectoryInfo || target.Attributes.HasFlag(FileAttributes.Directory))
                {
                    return Outcome.Failed("not a regular file (a symbolic link to a folder); only regular files are read");
                }

                info = new FileInfo(target.FullName);
            }

            if (!info.Exists)
            {
                return Directory.Exists(path)
                    ? Outcome.Failed("not a regular file (a folder); only regular files are read")
                    : Outcome.Gone;
            }

            if (info.Length > maxBytes)
            {
                return Outcome.Failed(TooLarge(info.Length, maxBytes));
            }

            using var handle = File.OpenHandle(info.FullName, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            return ReadCapped(handle, maxBytes);
        }
        catch (FileNotFoundException)
        {
            return Outcome.Gone;
        }
        catch (DirectoryNotFoundException)
        {
            return Outcome.Gone;
        }
        catch (UnauthorizedAccessException)
        {
            return Outcome.Failed("permission denied");
        }
        catch (IOException e)
        {
            return Outcome.Failed(LogText.Escape(e.Message));
        }
    }

    /// <summary>Reads to the end, but never more than <paramref name="maxBytes"/> (a file may grow after its size was checked).</summary>
    private static Outcome ReadCapped(SafeFileHandle handle, long maxBytes)
    {
        try
        {
            using var content = new MemoryStream();
            var buffer = new byte[64 * 1024];
            long offset = 0;
            while (true)
            {
                var read = RandomAccess.Read(handle, buffer, offset);
                if (read == 0)
                {
                    break;
                }

                offset += read;
                if (offset > maxBytes)
                {
                    return Outcome.Failed(TooLarge(offset, maxBytes, atLeast: true));
                }

                content.Write(buffer, 0, read);
            }

            return Outcome.Read(content.ToArray());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            return Outcome.Failed($"cannot read: {LogText.Escape(e.Message)}");
        }
    }

    internal static string TooLarge(long size, long maxBytes, bool atLeast = false) =>
        $"the file is {(atLeast ? "more than " : string.Empty)}{FormatSize(atLeast ? maxBytes : size)}, over the limit of {FormatSize(maxBytes)} for one manifest file";

    /// <summary>A byte count as people read it: <c>8 MiB</c>, <c>512 KiB</c>, <c>1000 bytes</c>.</summary>
    internal static string FormatSize(long bytes) => bytes switch
    {
        >= 1024 * 1024 when bytes % (1024 * 1024) == 0 => $"{bytes / (1024 * 1024)} MiB",
        >= 1024 when bytes % 1024 == 0 => $"{bytes / 1024} KiB",
        1 => "1 byte",
        _ => $"{bytes} bytes",
    };

    private static Outcome Problem(string path, int errno)
    {
        switch (errno)
        {
            case ENOENT or ENOTDIR:
                // Gone, unless the name is still there as a link to nothing.
                return StatPath(path, followLinks: false, out _) is { } link && (link.Mode & S_IFMT) == S_IFLNK
                    ? Outcome.Failed("a symbolic link to nothing (its target does not exist)")
                    : Outcome.Gone;
            default:
                return Outcome.Failed(Describe(errno));
        }
    }

    private static string Describe(int errno) => errno switch
    {
        ELOOP => "a symbolic link loop (too many levels of symbolic links)",
        EACCES or EPERM => "cannot read: permission denied",
        _ => $"cannot read: {Marshal.GetPInvokeErrorMessage(errno)}",
    };

    private static string? TypeProblem(FileStatus status) => (status.Mode & S_IFMT) switch
    {
        S_IFREG => null,
        S_IFIFO => "not a regular file (a FIFO); only regular files are read",
        S_IFCHR => "not a regular file (a character device); only regular files are read",
        S_IFBLK => "not a regular file (a block device); only regular files are read",
        S_IFSOCK => "not a regular file (a socket); only regular files are read",
        S_IFDIR => "not a regular file (a folder); only regular files are read",
        _ => "not a regular file; only regular files are read",
    };

    private readonly record struct FileStatus(ushort Mode, ulong Size);

    private static FileStatus? StatPath(string path, bool followLinks, out int errno)
    {
        var buffer = new byte[StatxSize];
        int result;
        do
        {
            result = Statx(AT_FDCWD, path, followLinks ? 0 : AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_SIZE, buffer);
            errno = result < 0 ? Marshal.GetLastPInvokeError() : 0;
        }
        while (result < 0 && errno == EINTR);

        return result < 0 ? null : ToStatus(buffer);
    }

    private static FileStatus? StatHandle(int fd, out int errno)
    {
        var buffer = new byte[StatxSize];
        var result = Statx(fd, string.Empty, AT_EMPTY_PATH, STATX_TYPE | STATX_SIZE, buffer);
        errno = result < 0 ? Marshal.GetLastPInvokeError() : 0;
        return result < 0 ? null : ToStatus(buffer);
    }

    // struct statx has the same layout on every Linux architecture: stx_mode (u16) at 28, stx_size (u64) at 40.
    private static FileStatus ToStatus(byte[] statx) =>
        new(BitConverter.ToUInt16(statx, 28), BitConverter.ToUInt64(statx, 40));

    private const int StatxSize = 256;
    private const int AT_FDCWD = -100;
    private const int AT_SYMLINK_NOFOLLOW = 0x100;
    private const int AT_EMPTY_PATH = 0x1000;
    private const uint STATX_TYPE = 0x1;
    private const uint STATX_SIZE = 0x200;
    private const ushort S_IFMT = 0xF000;
    private const ushort S_IFIFO = 0x1000;
    private const ushort S_IFCHR = 0x2000;
    private const ushort S_IFDIR = 0x4000;
    private const ushort S_IFBLK = 0x6000;
    private const ushort S_IFREG = 0x8000;
    private const ushort S_IFLNK = 0xA000;
    private const ushort S_IFSOCK = 0xC000;

    // The same values in the generic and x86-64 Linux ABIs.
    private const int O_RDONLY = 0;
    private const int O_NOCTTY = 0x100;
    private const int O_NONBLOCK = 0x800;
    private const int O_CLOEXEC = 0x80000;
    private const int EPERM = 1;
    private const int ENOENT = 2;
    private const int EINTR = 4;
    private const int EACCES = 13;
    private const int ENOTDIR = 20;
    private const int ENOSYS = 38;
    private const int ELOOP = 40;

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, [Out] byte[] buffer);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);
}
