using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Extensions.ObjectPool;

namespace FsmGateway.Transport.Linux;

/// <summary>
/// A kernel pipe that bytes pass through on their way from one socket to another with <c>splice(2)</c>: socket to
/// pipe, pipe to socket, never through user memory (HAProxy's splice). One relay direction holds one only while bulk
/// data flows and gives it back to the <see cref="Pool"/> before it waits; an idle connection holds none.
/// </summary>
internal sealed class SplicePipe : IDisposable
{
    /// <summary>The most bytes moved into the pipe at once: a pipe's default capacity (16 pages).</summary>
    public const int Capacity = 64 * 1024;

    private readonly int _read;
    private readonly int _write;
    private readonly byte[] _one = new byte[1];
    private int _pending;
    private bool _disposed;

    private SplicePipe(int read, int write)
    {
        _read = read;
        _write = write;
    }

    /// <summary>Empty pipes kept for the next bulk transfer; a full pool closes what is given back.</summary>
    public static ObjectPool<SplicePipe> Pool { get; } = new DefaultObjectPoolProvider { MaximumRetained = 256 }.Create(new Policy());

    /// <summary>Bytes in the pipe, not yet passed on.</summary>
    public int Pending => _pending;

    /// <summary>Opens a pipe (non-blocking, close-on-exec).</summary>
    /// <exception cref="IOException">The process or the system has too many open files.</exception>
    public static unsafe SplicePipe Open()
    {
        var fds = stackalloc int[2];
        if (LinuxNative.Pipe2(fds, LinuxNative.O_NONBLOCK | LinuxNative.O_CLOEXEC) < 0)
        {
            throw Error("pipe2");
        }

        return new SplicePipe(fds[0], fds[1]);
    }

    /// <summary>
    /// Moves what <paramref name="socket"/> has received (up to <see cref="Capacity"/>) into the empty pipe.
    /// </summary>
    /// <returns>The bytes moved; 0 at end of stream; -1 when the socket has nothing now.</returns>
    /// <exception cref="SocketException">The socket failed (reset).</exception>
    /// <exception cref="ObjectDisposedException">The socket was closed (an abort).</exception>
    public int Fill(SafeSocketHandle socket)
    {
        var added = false;
        socket.DangerousAddRef(ref added);
        try
        {
            while (true)
            {
                var moved = LinuxNative.Splice((int)socket.DangerousGetHandle(), 0, _write, 0, Capacity, LinuxNative.SPLICE_F_MOVE | LinuxNative.SPLICE_F_NONBLOCK);
                if (moved >= 0)
                {
                    _pending += (int)moved;
                    return (int)moved;
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno == LinuxNative.EAGAIN)
                {
                    return -1;
                }

                if (errno != LinuxNative.EINTR)
                {
                    throw SocketError(errno);
                }
            }
        }
        finally
        {
            if (added)
            {
                socket.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// Passes every byte in the pipe on to <paramref name="connection"/>. When its send buffer is full, waits for room
    /// through the connection's own socket (so on .NET's epoll, never blocking a thread) by sending the pipe's next
    /// byte with an ordinary send, then splices the rest.
    /// </summary>
    /// <exception cref="SocketException">The socket failed (reset, broken pipe).</exception>
    /// <exception cref="ObjectDisposedException">The socket was closed (an abort).</exception>
    public async ValueTask DrainAsync(LinuxConnection connection)
    {
        while (_pending > 0)
        {
            if (!TryDrain(connection.Handle))
            {
                ReadOne();
                await connection.SendAsync(_one, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            LinuxNative.Close(_read);
            LinuxNative.Close(_write);
        }
    }

    /// <summary>Splices from the pipe to the socket until the pipe is empty (true) or the socket's send buffer is full (false).</summary>
    private bool TryDrain(SafeSocketHandle socket)
    {
        var added = false;
        socket.DangerousAddRef(ref added);
        try
        {
            while (_pending > 0)
            {
                var moved = LinuxNative.Splice(_read, 0, (int)socket.DangerousGetHandle(), 0, (nuint)_pending, LinuxNative.SPLICE_F_MOVE | LinuxNative.SPLICE_F_NONBLOCK);
                if (moved > 0)
                {
                    _pending -= (int)moved;
                    continue;
                }

                var errno = moved == 0 ? 0 : Marshal.GetLastPInvokeError();
                if (errno == LinuxNative.EAGAIN)
                {
                    return false;
                }

                if (errno != LinuxNative.EINTR)
                {
                    throw SocketError(errno);
                }
            }

            return true;
        }
        finally
        {
            if (added)
            {
                socket.DangerousRelease();
            }
        }
    }

    private unsafe void ReadOne()
    {
        fixed (byte* one = _one)
        {
            nint read;
            do
            {
                read = LinuxNative.Read(_read, one, 1);
            }
            while (read < 0 && Marshal.GetLastPInvokeError() == LinuxNative.EINTR);

            if (read != 1)
            {
                throw Error("read from a splice pipe");
            }
        }

        _pending--;
    }

    /// <summary>A socket's error as the sockets transport reports it: ECONNRESET, EPIPE and the like as a <see cref="SocketException"/>.</summary>
    private static SocketException SocketError(int errno) => errno switch
    {
        0 => new SocketException((int)System.Net.Sockets.SocketError.ConnectionAborted), // a pipe that was not empty gave nothing
        32 => new SocketException((int)System.Net.Sockets.SocketError.Shutdown), // EPIPE: the socket was shut down for sending
        104 => new SocketException((int)System.Net.Sockets.SocketError.ConnectionReset), // ECONNRESET
        _ => new SocketException((int)System.Net.Sockets.SocketError.SocketError, $"splice: {Marshal.GetPInvokeErrorMessage(errno)}"),
    };

    private static IOException Error(string call)
    {
        var errno = Marshal.GetLastPInvokeError();
        return new IOException($"{call}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
    }

    /// <summary>Only an empty pipe goes back to the pool: one with bytes left in it belonged to a connection that failed.</summary>
    private sealed class Policy : PooledObjectPolicy<SplicePipe>
    {
        public override SplicePipe Create() => Open();

        public override bool Return(SplicePipe obj) => obj._pending == 0 && !obj._disposed;
    }
}
