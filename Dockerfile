# The fsm-gateway image: one image for both modes (`controller` and `gateway`), and for `run`/`compile`.
#   docker build -t ghcr.io/fsm-gateway/fsm-gateway:0.1.0 .
# Build stage: the same publish eng/test.sh checks (eng/publish.sh): the Native AOT data plane and the
# framework-dependent build for the KubernetesClient modes (docs/adr/0011). Runtime stage: ASP.NET Core runtime (for
# the framework-dependent build), non-root, nothing written outside /tmp, so it runs with readOnlyRootFilesystem.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
# Native AOT links with clang and needs zlib's headers.
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends clang zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Restore from the project files alone first, so a source change does not invalidate the restored-packages layer.
COPY global.json nuget.config Directory.Build.props Directory.Packages.props ./
COPY src/FsmGateway.Abstractions/FsmGateway.Abstractions.csproj src/FsmGateway.Abstractions/
COPY src/FsmGateway.Routing/FsmGateway.Routing.csproj src/FsmGateway.Routing/
COPY src/FsmGateway.Transport/FsmGateway.Transport.csproj src/FsmGateway.Transport/
COPY src/FsmGateway.Kubernetes/FsmGateway.Kubernetes.csproj src/FsmGateway.Kubernetes/
COPY src/FsmGateway.Host/FsmGateway.Host.csproj src/FsmGateway.Host/
RUN --mount=type=cache,target=/root/.nuget/packages dotnet restore src/FsmGateway.Host/FsmGateway.Host.csproj
COPY . .
RUN --mount=type=cache,target=/root/.nuget/packages ./eng/publish.sh /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0
# DOTNET_EnableDiagnostics=0: no diagnostics IPC socket or perf map files, so nothing is written at startup.
# ASPNETCORE_HTTP_PORTS empty: the base image's default port 8080 is not ours; the host binds only --admin-port.
ENV DOTNET_EnableDiagnostics=0 \
    DOTNET_NOLOGO=1 \
    ASPNETCORE_HTTP_PORTS=
WORKDIR /app
COPY --from=build /app .
# $APP_UID (1654) is the non-root user the .NET images define; deploy/20-controller.yaml runs as the same uid.
USER $APP_UID
EXPOSE 9901
# Each mode from the build that has it: `run`, `compile` and `gateway --controller-address` from the AOT data plane
# (/app/fsm-gateway), `controller` and `gateway` reading the API server from /app/full (eng/fsm-gateway-entrypoint).
ENTRYPOINT ["/app/fsm-gateway-entrypoint"]
CMD ["--help"]
