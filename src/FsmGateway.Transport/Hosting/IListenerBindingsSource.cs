using FsmGateway.Routing;

namespace FsmGateway.Transport.Hosting;

/// <summary>
/// What data planes elsewhere bound, for a gateway process that serves no traffic itself (a
/// <see cref="GatewayMode.Controller"/>). Registered, it replaces the assumption that every listener is bound: each change compiles the
/// current config again, so <c>Programmed</c> and <c>PortUnavailable</c> follow what the data planes report.
/// </summary>
public interface IListenerBindingsSource
{
    /// <summary>The bindings now at once on subscription, then each change.</summary>
    IObservable<ListenerBindings> Bindings { get; }
}
