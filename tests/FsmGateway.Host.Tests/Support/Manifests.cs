namespace FsmGateway.Host.Tests.Support;

/// <summary>Manifests for end-to-end tests: a Gateway bound to 127.0.0.1 only, a route to an echo Service.</summary>
internal static class Manifests
{
    public static string Gateway(params (string Name, int Port)[] listeners) => $"""
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata:
          name: gw
        spec:
          gatewayClassName: fsm
          addresses:
            - type: IPAddress
              value: 127.0.0.1
          listeners:
        {string.Join('\n', listeners.Select(l => $"    - name: {l.Name}\n      port: {l.Port}\n      protocol: TCP"))}
        """;

    public static string RouteAndBackend(int backendPort) => $"""
        apiVersion: gateway.networking.k8s.io/v1alpha2
        kind: TCPRoute
        metadata:
          name: echo
        spec:
          parentRefs:
            - name: gw
          rules:
            - backendRefs:
                - name: echo
                  port: 9000
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: echo
        spec:
          ports:
            - port: 9000
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: echo-1
          labels:
            kubernetes.io/service-name: echo
        addressType: IPv4
        ports:
          - port: {backendPort}
        endpoints:
          - addresses: [127.0.0.1]
        """;
}
