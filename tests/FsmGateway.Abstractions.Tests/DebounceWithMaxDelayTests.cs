using System.Reactive.Concurrency;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using FsmGateway.Reactive;

namespace FsmGateway.Abstractions.Tests;

/// <summary>Runs on virtual time: <see cref="HistoricalScheduler"/> advances only when told.</summary>
public sealed class DebounceWithMaxDelayTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(1);

    private readonly HistoricalScheduler _scheduler = new();
    private readonly Subject<int> _source = new();
    private readonly List<(TimeSpan At, int Value)> _emitted = [];

    public DebounceWithMaxDelayTests() =>
        _source.DebounceWithMaxDelay(Quiet, MaxDelay, _scheduler).Subscribe(v => _emitted.Add((Now, v)));

    private TimeSpan Now => _scheduler.Now - DateTimeOffset.MinValue;

    [Fact]
    public void Burst_EmitsOnlyTheLatest_AfterTheQuietPeriod()
    {
        _source.OnNext(1);
        _scheduler.AdvanceBy(TimeSpan.FromMilliseconds(50));
        _source.OnNext(2);
        _scheduler.AdvanceBy(TimeSpan.FromMilliseconds(50));
        _source.OnNext(3);
        _scheduler.AdvanceBy(TimeSpan.FromMilliseconds(99));
        Assert.Empty(_emitted);

        _scheduler.AdvanceBy(TimeSpan.FromMilliseconds(1));

        Assert.Equal([(TimeSpan.FromMilliseconds(200), 3)], _emitted);
    }

    [Fact]
    public void NeverPausingSource_StillEmitsAtTheMaximumDelay()
    {
        for (var i = 0; i < 30; i++)
        {
            _source.OnNext(i);
            _scheduler.AdvanceBy(TimeSpan.FromMilliseconds(50));
        }

        _scheduler.AdvanceBy(TimeSpan.FromSeconds(1));

        // Values arrive every 50 ms until 1,450 ms, so the 100 ms quiet never comes while they do: the max delay
        // forces the latest out at 1 s; the second burst ends quietly 100 ms after its last value.
        Assert.Equal([(TimeSpan.FromSeconds(1), 19), (TimeSpan.FromMilliseconds(1550), 29)], _emitted);
    }

    [Fact]
    public void QuietTimerOfAnEarlierBurst_DoesNotFireTwice()
    {
        _source.OnNext(1);
        _scheduler.AdvanceBy(TimeSpan.FromMilliseconds(100));
        _source.OnNext(2);
        _scheduler.AdvanceBy(TimeSpan.FromSeconds(5));

        Assert.Equal([(TimeSpan.FromMilliseconds(100), 1), (TimeSpan.FromMilliseconds(200), 2)], _emitted);
    }

    [Fact]
    public void Completion_FlushesThePendingValue()
    {
        var completed = false;
        var values = new List<int>();
        var source = new Subject<int>();
        source.DebounceWithMaxDelay(Quiet, MaxDelay, _scheduler).Subscribe(values.Add, () => completed = true);

        source.OnNext(7);
        source.OnCompleted();

        Assert.Equal([7], values);
        Assert.True(completed);
    }
}
