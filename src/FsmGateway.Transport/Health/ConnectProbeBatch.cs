using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace FsmGateway.Transport.Health;

/// <summary>
/// Connect-only TCP probes on Linux, done in batches by the prober's timer rather than one socket object each: a
/// non-blocking <c>socket(2)</c> and <c>connect(2)</c> per probe when it is due, then one <c>poll(2)</c> over every probe
/// in flight, right after a batch starts (a near endpoint answers within the connect call) and at each later timer
/// tick until each one connects, fails or passes its deadline; closed with a reset, as HAProxy closes its checks.
/// </summary>
/// <remarks>
/// A probe costs five system calls and no thread wake-up of its own: no <see cref="Socket"/>, no async socket state, no
/// epoll registration, no completion dispatch (benchmarks/README.md, "Active health probing", has the before and
/// after). The price is that an endpoint that takes longer than the connect call to answer is seen answering at the
/// next tick (a tenth of the check's interval at most), which a health state that moves after whole probes does not
/// notice. Thread-safe; everything it does is non-blocking.
/// </remarks>
internal sealed partial class ConnectProbeBatch : IDisposable
{
    private const int AF_INET = 2;
    private const int AF_INET6 = 10;
    private const int SOCK_STREAM = 1;
    private const int SOCK_NONBLOCK = 0x800;
    private const int SOCK_CLOEXEC = 0x80000;
    private const int SOL_SOCKET = 1;
    private const int SO_ERROR = 4;
    private const int SO_LINGER = 13;
    private const int EINPROGRESS = 115;
    private const int EINTR = 4;
    private const short POLLOUT = 0x4;

    private static volatile bool s_available = OperatingSystem.IsLinux();

    private readonly Lock _lock = new();
    private readonly List<InFlight> _inFlight = [];
    private PollFd[] _poll = new PollFd[64];
    private int _count;
    private bool _disposed;

    /// <summary>Whether this platform has the batch (Linux, with a libc that the runtime can load).</summary>
    public static bool IsSupported => s_available;

    /// <summary>Probes in flight (connecting), to be polled again at a later tick.</summary>
    public int Connecting => Volatile.Read(ref _count);

    /// <summary>How soon the probes in flight want their next <see cref="Poll"/> (timestamp ticks; the least they asked for), or <see cref="long.MaxValue"/> with none.</summary>
    public long PollEvery { get; private set; } = long.MaxValue;

    /// <summary>Whether <paramref name="state"/>'s probe is a plain connect to an IP address, which a batch does.</summary>
    public static bool Handles(ActiveHealthState state) =>
        IsSupported
        && state.Check.Protocol == Routing.HealthProbeProtocol.Tcp
        && state.Check.TcpSend.IsEmpty
        && state.Check.TcpReceive.IsEmpty
        && state.EndPoint is IPEndPoint { AddressFamily: AddressFamily.InterNetwork or AddressFamily.InterNetworkV6 };

    /// <summary>
    /// Starts a connect to <paramref name="endPoint"/> that <paramref name="waiter"/> completes: with null once
    /// connected, with why not when refused, reset or unreachable, or with <paramref name="timedOut"/> when it has not
    /// connected by <paramref name="deadline"/> (a <see cref="TimeProvider"/> timestamp, checked at each <see cref="Poll"/>,
    /// which it asks for every <paramref name="pollEvery"/> ticks while in flight).
    /// </summary>
    public ValueTask<string?> Connect(IPEndPoint endPoint, long deadline, long pollEvery, string timedOut, Waiter waiter)
    {
        var task = waiter.Arm();
        string? failed;
        try
        {
            failed = Start(endPoint, new InFlight(0, deadline, pollEvery, timedOut, waiter));
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // A libc the runtime cannot load: every later probe takes the socket path.
            s_available = false;
            failed = "the platform's socket calls are unavailable";
        }

        if (failed is not null)
        {
            waiter.Complete(failed);
        }

        return task;
    }

    /// <summary>
    /// Finishes every probe in flight that has connected, failed or passed its deadline at <paramref name="now"/>, and
    /// completes their waiters (on this thread, after the batch's lock is released).
    /// </summary>
    public void Poll(long now)
    {
        List<(Waiter Waiter, string? Error)> completed = [];
        lock (_lock)
        {
            if (_inFlight.Count == 0)
            {
                return;
            }

            if (_poll.Length < _inFlight.Count)
            {
                _poll = new PollFd[Math.Max(_inFlight.Count, _poll.Length * 2)];
            }

            for (var i = 0; i < _inFlight.Count; i++)
            {
                _poll[i] = new PollFd { Fd = _inFlight[i].Fd, Events = POLLOUT };
            }

            int ready;
            do
            {
                ready = PollNative(ref _poll[0], (nuint)_inFlight.Count, 0);
            }
            while (ready < 0 && Marshal.GetLastPInvokeError() == EINTR);

            var kept = 0;
            var pollEvery = long.MaxValue;
            for (var i = 0; i < _inFlight.Count; i++)
            {
                var probe = _inFlight[i];
                string? error;
                if (ready > 0 && _poll[i].Revents != 0)
                {
                    error = PendingError(probe.Fd);
                }
                else if (now >= probe.Deadline)
                {
                    error = probe.TimedOut;
                }
                else
                {
                    _inFlight[kept++] = probe;
                    pollEvery = Math.Min(pollEvery, probe.PollEvery);
                    continue;
                }

                _ = CloseNative(probe.Fd);
                completed.Add((probe.Waiter, error));
            }

            _inFlight.RemoveRange(kept, _inFlight.Count - kept);
            PollEvery = pollEvery;
            Volatile.Write(ref _count, kept);
        }

        CompleteAll(completed);
    }

    /// <summary>Closes every probe in flight; their waiters complete with <paramref name="reason"/>. Later connects fail at once.</summary>
    public void Close(string reason)
    {
        List<(Waiter Waiter, string? Error)> completed = [];
        lock (_lock)
        {
            _disposed = true;
            foreach (var probe in _inFlight)
            {
                _ = CloseNative(probe.Fd);
                completed.Add((probe.Waiter, reason));
            }

            _inFlight.Clear();
            PollEvery = long.MaxValue;
            Volatile.Write(ref _count, 0);
        }

        CompleteAll(completed);
    }

    public void Dispose() => Close("the prober stopped");

    private static void CompleteAll(List<(Waiter Waiter, string? Error)> completed)
    {
        // Outside the lock: a waiter's continuation runs inline (records the outcome, queues the next probe).
        foreach (var (waiter, error) in completed)
        {
            waiter.Complete(error);
        }
    }

    /// <summary>Opens and connects the probe's socket; returns why it failed at once, or null when it is in flight.</summary>
    private string? Start(IPEndPoint endPoint, InFlight probe)
    {
        var v6 = endPoint.AddressFamily == AddressFamily.InterNetworkV6;
        Span<byte> address = stackalloc byte[28];
        address.Clear();
        int length;
        if (v6)
        {
            // struct sockaddr_in6: family, port (network order), flow info, address, scope id.
            BinaryPrimitives.WriteUInt16LittleEndian(address, AF_INET6);
            BinaryPrimitives.WriteUInt16BigEndian(address[2..], (ushort)endPoint.Port);
            endPoint.Address.TryWriteBytes(address.Slice(8, 16), out _);
            BinaryPrimitives.WriteUInt32LittleEndian(address[24..], (uint)endPoint.Address.ScopeId);
            length = 28;
        }
        else
        {
            // struct sockaddr_in: family, port (network order), address, padding.
            BinaryPrimitives.WriteUInt16LittleEndian(address, AF_INET);
            BinaryPrimitives.WriteUInt16BigEndian(address[2..], (ushort)endPoint.Port);
            endPoint.Address.TryWriteBytes(address.Slice(4, 4), out _);
            length = 16;
        }

        lock (_lock)
        {
            if (_disposed)
            {
                return "the prober stopped";
            }

            var fd = SocketNative(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0)
            {
                return Describe(Marshal.GetLastPInvokeError());
            }

            // Linger on with a zero timeout: close(2) sends a reset; 1,000 probes a second leave no TIME_WAIT behind.
            Span<int> linger = [1, 0];
            if (SetSockOptNative(fd, SOL_SOCKET, SO_LINGER, ref linger[0], sizeof(int) * 2) < 0
                || (ConnectNative(fd, ref address[0], (uint)length) < 0 && Marshal.GetLastPInvokeError() is var errno && errno != EINPROGRESS))
            {
                var error = Describe(Marshal.GetLastPInvokeError());
                _ = CloseNative(fd);
                return error;
            }

            _inFlight.Add(probe with { Fd = fd });
            PollEvery = Math.Min(PollEvery, probe.PollEvery);
            Volatile.Write(ref _count, _inFlight.Count);
            return null;
        }
    }

    /// <summary>The outcome of a finished connect: null when it connected, else why not.</summary>
    private static string? PendingError(int fd)
    {
        var error = 0;
        var length = (uint)sizeof(int);
        if (GetSockOptNative(fd, SOL_SOCKET, SO_ERROR, ref error, ref length) < 0)
        {
            return Describe(Marshal.GetLastPInvokeError());
        }

        return error == 0 ? null : Describe(error);
    }

    /// <summary>Words for an errno, the same as a <see cref="Socket"/> probe's for the common ones.</summary>
    internal static string Describe(int errno) => errno switch
    {
        111 => "connection refused", // ECONNREFUSED
        104 => "connection reset", // ECONNRESET
        101 or 113 => "unreachable", // ENETUNREACH, EHOSTUNREACH
        _ => Marshal.GetPInvokeErrorMessage(errno),
    };

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static partial int SocketNative(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "setsockopt", SetLastError = true)]
    private static partial int SetSockOptNative(int fd, int level, int name, ref int value, uint length);

    [LibraryImport("libc", EntryPoint = "getsockopt", SetLastError = true)]
    private static partial int GetSockOptNative(int fd, int level, int name, ref int value, ref uint length);

    [LibraryImport("libc", EntryPoint = "connect", SetLastError = true)]
    private static partial int ConnectNative(int fd, ref byte address, uint length);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static partial int PollNative(ref PollFd fds, nuint count, int timeout);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int CloseNative(int fd);

    /// <summary>struct pollfd.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    private readonly record struct InFlight(int Fd, long Deadline, long PollEvery, string TimedOut, Waiter Waiter);

    /// <summary>Where one endpoint's probe loop awaits its batched connect (one per loop, reused for every probe).</summary>
    internal sealed class Waiter : IValueTaskSource<string?>
    {
        // Continuations run inline: the poll that finishes a probe records it and queues the next, on its own thread.
        private ManualResetValueTaskSourceCore<string?> _core = new() { RunContinuationsAsynchronously = false };

        public ValueTask<string?> Arm()
        {
            _core.Reset();
            return new ValueTask<string?>(this, _core.Version);
        }

        public void Complete(string? error) => _core.SetResult(error);

        string? IValueTaskSource<string?>.GetResult(short token) => _core.GetResult(token);

        ValueTaskSourceStatus IValueTaskSource<string?>.GetStatus(short token) => _core.GetStatus(token);

        void IValueTaskSource<string?>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}
