namespace FsmGateway.Transport.Hosting;

/// <summary>What a gateway process is: the one value that decides whether it binds listeners, which, and how ports are shared.</summary>
public enum GatewayMode
{
    /// <summary>
    /// Binds every Gateway's listeners on this machine (<c>fsm-gateway run</c>, an embedder): listeners of different
    /// Gateways share the machine's addresses, so two on one port conflict. The default.
    /// </summary>
    Standalone,

    /// <summary>
    /// Compiles for status and for its data planes but binds nothing and builds no proxy (<c>fsm-gateway controller</c>):
    /// bind outcomes come from what data planes report (<see cref="IListenerBindingsSource"/>), and each Gateway has
    /// addresses of its own.
    /// </summary>
    Controller,

    /// <summary>
    /// Binds the listeners of one Gateway, <see cref="FsmGatewayOptions.ServedGateway"/>, on addresses of its own
    /// (<c>fsm-gateway gateway</c>, a provisioned pod).
    /// </summary>
    DataPlane,
}
