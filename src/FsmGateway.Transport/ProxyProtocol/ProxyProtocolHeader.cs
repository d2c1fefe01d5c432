using System.Net;

namespace FsmGateway.Transport.ProxyProtocol;

/// <summary>What a PROXY protocol header says about the connection it precedes.</summary>
internal enum ProxyProtocolCommand
{
    /// <summary>The connection is relayed for a client: <see cref="ProxyProtocolHeader.Source"/> and <see cref="ProxyProtocolHeader.Destination"/> are its addresses.</summary>
    Proxy,

    /// <summary>
    /// The sender's own connection (v2 <c>LOCAL</c>, e.g. a health check), or addresses the receiver cannot use (v1
    /// <c>UNKNOWN</c>, v2 <c>AF_UNSPEC</c> or <c>AF_UNIX</c>): the real connection's endpoints stand.
    /// </summary>
    Local,
}

/// <summary>A parsed PROXY protocol header.</summary>
/// <param name="Version">1 (text) or 2 (binary).</param>
/// <param name="Command">Whether the addresses below apply.</param>
/// <param name="Source">The client's address and port, for <see cref="ProxyProtocolCommand.Proxy"/>.</param>
/// <param name="Destination">The address and port the client connected to, for <see cref="ProxyProtocolCommand.Proxy"/>.</param>
internal sealed record ProxyProtocolHeader(int Version, ProxyProtocolCommand Command, IPEndPoint? Source, IPEndPoint? Destination)
{
    /// <summary>The v1 signature, <c>"PROXY "</c>.</summary>
    public static ReadOnlySpan<byte> V1Signature => "PROXY "u8;

    /// <summary>The v2 signature, <c>\r\n\r\n\0\r\nQUIT\n</c>.</summary>
    public static ReadOnlySpan<byte> V2Signature => [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    /// <summary>The longest v1 header, CRLF included (the specification's 107 bytes).</summary>
    public const int V1MaxLength = 107;

    /// <summary>The shortest v1 header, <c>"PROXY UNKNOWN\r\n"</c>.</summary>
    public const int V1MinLength = 15;

    /// <summary>The v2 fixed part: signature, version and command, family and protocol, length.</summary>
    public const int V2FixedLength = 16;

    /// <summary>
    /// The most address and TLV bytes accepted after a v2 fixed header: the largest address block (216, <c>AF_UNIX</c>)
    /// plus 320 bytes of TLVs, which are skipped. A longer header is refused rather than buffered.
    /// </summary>
    public const int V2MaxPayload = 536;

    /// <summary>The longest header either version may have here.</summary>
    public const int MaxLength = V2FixedLength + V2MaxPayload;
}
