using System.Collections.Immutable;
using Google.Protobuf;
using Google.Protobuf.Collections;
using M = FsmGateway.Resources;
using P = FsmGateway.Transport.ControlPlane.Protocol;

namespace FsmGateway.Transport.ControlPlane;

/// <summary>
/// The model (<see cref="M.Resource"/> and its parts) to and from the stream's messages, field for field, so a data
/// plane receives the very objects the controller compiled and needs no Kubernetes client to read them. Compiled into
/// both ends (the client in Transport, the server in the host). A message of a kind this side does not know decodes
/// to <see langword="null"/> (skipped), which is how a newer controller's additions reach an older data plane.
/// </summary>
internal static class ModelCodec
{
    public static P.Resource Encode(M.Resource resource)
    {
        var message = new P.Resource { Metadata = Encode(resource.Metadata) };
        switch (resource)
        {
            case M.GatewayClass c:
                message.GatewayClass = new P.GatewayClass { ControllerName = c.ControllerName };
                if (c.ParametersRef is { } parameters)
                {
                    message.GatewayClass.ParametersRef = parameters;
                }

                break;
            case M.Gateway g:
                message.Gateway = new P.Gateway { GatewayClassName = g.GatewayClassName };
                message.Gateway.Listeners.AddRange(g.Listeners.Select(Encode));
                message.Gateway.Addresses.AddRange(g.Addresses.Select(static a => new P.GatewayAddress { Type = a.Type, Value = a.Value }));
                break;
            case M.TcpRoute r:
                message.TcpRoute = new P.TcpRoute { ApiVersion = r.ApiVersion };
                message.TcpRoute.ParentRefs.AddRange(r.ParentRefs.Select(Encode));
                message.TcpRoute.Rules.AddRange(r.Rules.Select(Encode));
                break;
            case M.ReferenceGrant g:
                message.ReferenceGrant = new P.ReferenceGrant();
                message.ReferenceGrant.From.AddRange(g.From.Select(static f => new P.ReferenceGrantFrom { Group = f.Group, Kind = f.Kind, Namespace = f.Namespace }));
                message.ReferenceGrant.To.AddRange(g.To.Select(static t =>
                {
                    var to = new P.ReferenceGrantTo { Group = t.Group, Kind = t.Kind };
                    if (t.Name is { } name)
                    {
                        to.Name = name;
                    }

                    return to;
                }));
                break;
            case M.Service s:
                message.Service = new P.Service { Type = s.Type };
                message.Service.Ports.AddRange(s.Ports.Select(static p =>
                {
                    var port = new P.ServicePort { Port = p.Port, Protocol = p.Protocol };
                    if (p.Name is { } name)
                    {
                        port.Name = name;
                    }

                    return port;
                }));
                break;
            case M.EndpointSlice s:
                message.EndpointSlice = new P.EndpointSlice { AddressType = s.AddressType };
                if (s.ServiceName is { } service)
                {
                    message.EndpointSlice.ServiceName = service;
                }

                message.EndpointSlice.Ports.AddRange(s.Ports.Select(static p =>
                {
                    var port = new P.EndpointPort { Protocol = p.Protocol };
                    if (p.Name is { } name)
                    {
                        port.Name = name;
                    }

                    if (p.Port is { } number)
                    {
                        port.Port = number;
                    }

                    return port;
                }));
                message.EndpointSlice.Endpoints.AddRange(s.Endpoints.Select(static e =>
                {
                    var endpoint = new P.Endpoint();
                    endpoint.Addresses.AddRange(e.Addresses);
                    if (e.Ready is { } ready)
                    {
                        endpoint.Ready = ready;
                    }

                    return endpoint;
                }));
                break;
            case M.KubernetesNamespace:
                message.Namespace = new P.Namespace();
                break;
            case M.HealthCheckPolicy p:
                message.HealthCheckPolicy = new P.HealthCheckPolicy { HealthCheck = Encode(p.HealthCheck) };
                message.HealthCheckPolicy.TargetRefs.AddRange(p.TargetRefs.Select(Encode));
                message.HealthCheckPolicy.Ports.AddRange(p.Ports.Select(static port => new P.PortHealthCheck { Port = port.Port, HealthCheck = Encode(port.HealthCheck) }));
                break;
            case M.BackendLbPolicy p:
                message.BackendLbPolicy = new P.BackendLbPolicy { HasSessionPersistence = p.HasSessionPersistence };
                message.BackendLbPolicy.TargetRefs.AddRange(p.TargetRefs.Select(Encode));
                if (p.Algorithm is { } algorithm)
                {
                    message.BackendLbPolicy.Algorithm = algorithm;
                }

                break;
            case M.BackendTrafficPolicy p:
                message.BackendTrafficPolicy = Encode(p);
                break;
            case M.ListenerFilter f:
                message.ListenerFilter = new P.ListenerFilter
                {
                    Type = f.Type,
                    Priority = f.Priority,
                    Aspect = f.Aspect,
                    DefinitionRef = Encode(f.DefinitionRef),
                    ConfigRef = Encode(f.ConfigRef),
                };
                message.ListenerFilter.TargetRefs.AddRange(f.TargetRefs.Select(static t => new P.PortTargetReference { Group = t.Group, Kind = t.Kind, Name = t.Name, Port = t.Port }));
                break;
            case M.FsmFilter f:
                message.Filter = new P.Filter { Type = f.Type, DefinitionRef = Encode(f.DefinitionRef), ConfigRef = Encode(f.ConfigRef) };
                break;
            case M.ConcurrencyLimitConfig c:
                message.ConcurrencyLimit = new P.ConcurrencyLimit { MaxConnections = c.MaxConnections };
                break;
            case M.IPRestrictionConfig c:
                message.IpRestriction = new P.IPRestriction();
                message.IpRestriction.Allowed.AddRange(c.Allowed);
                message.IpRestriction.Forbidden.AddRange(c.Forbidden);
                break;
            case M.RouteRuleFilterPolicy p:
                message.RouteRuleFilterPolicy = new P.RouteRuleFilterPolicy();
                message.RouteRuleFilterPolicy.TargetRefs.AddRange(p.TargetRefs.Select(Encode));
                message.RouteRuleFilterPolicy.FilterRefs.AddRange(p.FilterRefs.Select(static f => new P.FilterReference { Group = f.Group, Kind = f.Kind, Name = f.Name, Priority = f.Priority }));
                break;
            case M.RateLimitPolicy p:
                message.RateLimitPolicy = new P.RateLimitPolicy { TargetRef = Encode(p.TargetRef) };
                if (p.Bps is { } bps)
                {
                    message.RateLimitPolicy.Bps = bps;
                }

                message.RateLimitPolicy.Ports.AddRange(p.Ports.Select(static port =>
                {
                    var limit = new P.PortRateLimit { Port = port.Port };
                    if (port.Bps is { } portBps)
                    {
                        limit.Bps = portBps;
                    }

                    return limit;
                }));
                message.RateLimitPolicy.HttpFields.AddRange(p.HttpFields);
                break;
            case M.ClientTrafficPolicy p:
                message.ClientTrafficPolicy = Encode(p);
                break;
            default:
                throw new ArgumentException($"The config stream cannot carry a {resource.GetType().Name}.", nameof(resource));
        }

        return message;
    }

    /// <summary>The model object, or null when the message holds a kind this side does not know.</summary>
    public static M.Resource? Decode(P.Resource message)
    {
        var meta = Decode(message.Metadata ?? new P.ObjectMeta());
        return message.KindCase switch
        {
            P.Resource.KindOneofCase.GatewayClass => new M.GatewayClass(meta, message.GatewayClass.ControllerName)
            {
                ParametersRef = message.GatewayClass.HasParametersRef ? message.GatewayClass.ParametersRef : null,
            },
            P.Resource.KindOneofCase.Gateway => new M.Gateway(meta, message.Gateway.GatewayClassName, Array(message.Gateway.Listeners, Decode))
            {
                Addresses = Array(message.Gateway.Addresses, static a => new M.GatewayAddress(a.Type, a.Value)),
            },
            P.Resource.KindOneofCase.TcpRoute => new M.TcpRoute(meta, Array(message.TcpRoute.ParentRefs, Decode), Array(message.TcpRoute.Rules, Decode))
            {
                ApiVersion = message.TcpRoute.ApiVersion,
            },
            P.Resource.KindOneofCase.ReferenceGrant => new M.ReferenceGrant(
                meta,
                Array(message.ReferenceGrant.From, static f => new M.ReferenceGrantFrom(f.Group, f.Kind, f.Namespace)),
                Array(message.ReferenceGrant.To, static t => new M.ReferenceGrantTo(t.Group, t.Kind, t.HasName ? t.Name : null))),
            P.Resource.KindOneofCase.Service => new M.Service(meta, Array(message.Service.Ports, static p => new M.ServicePort(p.HasName ? p.Name : null, p.Port, p.Protocol)))
            {
                Type = message.Service.Type,
            },
            P.Resource.KindOneofCase.EndpointSlice => new M.EndpointSlice(
                meta,
                message.EndpointSlice.HasServiceName ? message.EndpointSlice.ServiceName : null,
                message.EndpointSlice.AddressType,
                Array(message.EndpointSlice.Ports, static p => new M.EndpointPort(p.HasName ? p.Name : null, p.HasPort ? p.Port : null, p.Protocol)),
                Array(message.EndpointSlice.Endpoints, static e => new M.Endpoint(Array(e.Addresses, static a => a), e.HasReady ? e.Ready : null))),
            P.Resource.KindOneofCase.Namespace => new M.KubernetesNamespace(meta),
            P.Resource.KindOneofCase.HealthCheckPolicy => new M.HealthCheckPolicy(
                meta,
                Array(message.HealthCheckPolicy.TargetRefs, Decode),
                Array(message.HealthCheckPolicy.Ports, static p => new M.PortHealthCheck(p.Port, Decode(p.HealthCheck))),
                Decode(message.HealthCheckPolicy.HealthCheck)),
            P.Resource.KindOneofCase.BackendLbPolicy => new M.BackendLbPolicy(
                meta,
                Array(message.BackendLbPolicy.TargetRefs, Decode),
                message.BackendLbPolicy.HasAlgorithm ? message.BackendLbPolicy.Algorithm : null)
            {
                HasSessionPersistence = message.BackendLbPolicy.HasSessionPersistence,
            },
            P.Resource.KindOneofCase.BackendTrafficPolicy => Decode(meta, message.BackendTrafficPolicy),
            P.Resource.KindOneofCase.ListenerFilter => new M.ListenerFilter(
                meta,
                message.ListenerFilter.Type,
                message.ListenerFilter.Priority,
                message.ListenerFilter.Aspect,
                Array(message.ListenerFilter.TargetRefs, static t => new M.PortTargetReference(t.Group, t.Kind, t.Name, t.Port)))
            {
                DefinitionRef = Decode(message.ListenerFilter.DefinitionRef),
                ConfigRef = Decode(message.ListenerFilter.ConfigRef),
            },
            P.Resource.KindOneofCase.Filter => new M.FsmFilter(meta, message.Filter.Type)
            {
                DefinitionRef = Decode(message.Filter.DefinitionRef),
                ConfigRef = Decode(message.Filter.ConfigRef),
            },
            P.Resource.KindOneofCase.ConcurrencyLimit => new M.ConcurrencyLimitConfig(meta, message.ConcurrencyLimit.MaxConnections),
            P.Resource.KindOneofCase.IpRestriction => new M.IPRestrictionConfig(
                meta,
                Array(message.IpRestriction.Allowed, static a => a),
                Array(message.IpRestriction.Forbidden, static f => f)),
            P.Resource.KindOneofCase.RouteRuleFilterPolicy => new M.RouteRuleFilterPolicy(
                meta,
                Array(message.RouteRuleFilterPolicy.TargetRefs, Decode),
                Array(message.RouteRuleFilterPolicy.FilterRefs, static f => new M.FilterReference(f.Group, f.Kind, f.Name, f.Priority))),
            P.Resource.KindOneofCase.RateLimitPolicy => new M.RateLimitPolicy(
                meta,
                Decode(message.RateLimitPolicy.TargetRef ?? new P.PolicyTargetReference()),
                message.RateLimitPolicy.HasBps ? message.RateLimitPolicy.Bps : null,
                Array(message.RateLimitPolicy.Ports, static p => new M.PortRateLimit(p.Port, p.HasBps ? p.Bps : null)))
            {
                HttpFields = Array(message.RateLimitPolicy.HttpFields, static f => f),
            },
            P.Resource.KindOneofCase.ClientTrafficPolicy => Decode(meta, message.ClientTrafficPolicy),
            _ => null,
        };
    }

    public static P.ResourceKey Encode(M.ResourceKey key) => new() { Kind = Encode(key.Kind), Namespace = key.Namespace, Name = key.Name };

    /// <summary>The key, or null when its kind is one this side does not know.</summary>
    public static M.ResourceKey? Decode(P.ResourceKey key) =>
        Decode(key.Kind) is { } kind ? new M.ResourceKey(kind, key.Namespace, key.Name) : null;

    private static P.ResourceKind Encode(M.ResourceKind kind) => kind switch
    {
        M.ResourceKind.GatewayClass => P.ResourceKind.GatewayClass,
        M.ResourceKind.Gateway => P.ResourceKind.Gateway,
        M.ResourceKind.TcpRoute => P.ResourceKind.TcpRoute,
        M.ResourceKind.ReferenceGrant => P.ResourceKind.ReferenceGrant,
        M.ResourceKind.Service => P.ResourceKind.Service,
        M.ResourceKind.EndpointSlice => P.ResourceKind.EndpointSlice,
        M.ResourceKind.Namespace => P.ResourceKind.Namespace,
        M.ResourceKind.HealthCheckPolicy => P.ResourceKind.HealthCheckPolicy,
        M.ResourceKind.BackendLbPolicy => P.ResourceKind.BackendLbPolicy,
        M.ResourceKind.BackendTrafficPolicy => P.ResourceKind.BackendTrafficPolicy,
        M.ResourceKind.ListenerFilter => P.ResourceKind.ListenerFilter,
        M.ResourceKind.Filter => P.ResourceKind.Filter,
        M.ResourceKind.ConcurrencyLimit => P.ResourceKind.ConcurrencyLimit,
        M.ResourceKind.IPRestriction => P.ResourceKind.IpRestriction,
        M.ResourceKind.RouteRuleFilterPolicy => P.ResourceKind.RouteRuleFilterPolicy,
        M.ResourceKind.RateLimitPolicy => P.ResourceKind.RateLimitPolicy,
        M.ResourceKind.ClientTrafficPolicy => P.ResourceKind.ClientTrafficPolicy,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "The config stream has no such kind."),
    };

    private static M.ResourceKind? Decode(P.ResourceKind kind) => kind switch
    {
        P.ResourceKind.GatewayClass => M.ResourceKind.GatewayClass,
        P.ResourceKind.Gateway => M.ResourceKind.Gateway,
        P.ResourceKind.TcpRoute => M.ResourceKind.TcpRoute,
        P.ResourceKind.ReferenceGrant => M.ResourceKind.ReferenceGrant,
        P.ResourceKind.Service => M.ResourceKind.Service,
        P.ResourceKind.EndpointSlice => M.ResourceKind.EndpointSlice,
        P.ResourceKind.Namespace => M.ResourceKind.Namespace,
        P.ResourceKind.HealthCheckPolicy => M.ResourceKind.HealthCheckPolicy,
        P.ResourceKind.BackendLbPolicy => M.ResourceKind.BackendLbPolicy,
        P.ResourceKind.BackendTrafficPolicy => M.ResourceKind.BackendTrafficPolicy,
        P.ResourceKind.ListenerFilter => M.ResourceKind.ListenerFilter,
        P.ResourceKind.Filter => M.ResourceKind.Filter,
        P.ResourceKind.ConcurrencyLimit => M.ResourceKind.ConcurrencyLimit,
        P.ResourceKind.IpRestriction => M.ResourceKind.IPRestriction,
        P.ResourceKind.RouteRuleFilterPolicy => M.ResourceKind.RouteRuleFilterPolicy,
        P.ResourceKind.RateLimitPolicy => M.ResourceKind.RateLimitPolicy,
        P.ResourceKind.ClientTrafficPolicy => M.ResourceKind.ClientTrafficPolicy,
        _ => null,
    };

    private static P.ObjectMeta Encode(M.ObjectMeta meta)
    {
        var message = new P.ObjectMeta { Namespace = meta.Namespace, Name = meta.Name, Generation = meta.Generation };
        if (meta.CreationTimestamp is { } created)
        {
            message.CreationTimestampTicks = created.UtcTicks;
        }

        if (meta.Uid is { } uid)
        {
            message.Uid = uid;
        }

        if (meta.ResourceVersion is { } version)
        {
            message.ResourceVersion = version;
        }

        message.Labels.Add(meta.Labels);
        return message;
    }

    private static M.ObjectMeta Decode(P.ObjectMeta message) => new(message.Namespace, message.Name)
    {
        Generation = message.Generation,
        CreationTimestamp = message.HasCreationTimestampTicks ? new DateTimeOffset(message.CreationTimestampTicks, TimeSpan.Zero) : null,
        Labels = SortedLabels(message.Labels),
        Uid = message.HasUid ? message.Uid : null,
        ResourceVersion = message.HasResourceVersion ? message.ResourceVersion : null,
    };

    private static ImmutableSortedDictionary<string, string> SortedLabels(MapField<string, string> labels) =>
        ImmutableSortedDictionary.CreateRange(StringComparer.Ordinal, labels);

    private static P.Listener Encode(M.Listener listener)
    {
        var message = new P.Listener
        {
            Name = listener.Name,
            Port = listener.Port,
            Protocol = listener.Protocol,
            HasTls = listener.HasTls,
            AllowedRoutes = new P.AllowedRoutes
            {
                From = listener.AllowedRoutes.From switch
                {
                    M.FromNamespaces.All => P.FromNamespaces.All,
                    M.FromNamespaces.Selector => P.FromNamespaces.Selector,
                    _ => P.FromNamespaces.Same,
                },
                Selector = listener.AllowedRoutes.Selector is { } selector ? Encode(selector) : null,
            },
        };
        if (listener.Hostname is { } hostname)
        {
            message.Hostname = hostname;
        }

        if (listener.AllowedRoutes.Kinds is { } kinds)
        {
            message.AllowedRoutes.Kinds = new P.RouteGroupKinds();
            message.AllowedRoutes.Kinds.Items.AddRange(kinds.Select(static k => new P.RouteGroupKind { Group = k.Group, Kind = k.Kind }));
        }

        return message;
    }

    private static M.Listener Decode(P.Listener message)
    {
        var allowed = message.AllowedRoutes ?? new P.AllowedRoutes();
        return new M.Listener(message.Name, message.Port, message.Protocol)
        {
            Hostname = message.HasHostname ? message.Hostname : null,
            HasTls = message.HasTls,
            AllowedRoutes = new M.AllowedRoutes(
                allowed.From switch
                {
                    P.FromNamespaces.All => M.FromNamespaces.All,
                    P.FromNamespaces.Selector => M.FromNamespaces.Selector,
                    _ => M.FromNamespaces.Same,
                },
                allowed.Selector is { } selector ? Decode(selector) : null,
                allowed.Kinds is { } kinds ? Array(kinds.Items, static k => new M.RouteGroupKind(k.Group, k.Kind)) : null),
        };
    }

    private static P.LabelSelector Encode(M.LabelSelector selector)
    {
        var message = new P.LabelSelector();
        message.MatchLabels.Add(selector.MatchLabels);
        message.MatchExpressions.AddRange(selector.MatchExpressions.Select(static e =>
        {
            var requirement = new P.LabelSelectorRequirement
            {
                Key = e.Key,
                Operator = e.Operator switch
                {
                    M.LabelSelectorOperator.NotIn => P.LabelSelectorOperator.NotIn,
                    M.LabelSelectorOperator.Exists => P.LabelSelectorOperator.Exists,
                    M.LabelSelectorOperator.DoesNotExist => P.LabelSelectorOperator.DoesNotExist,
                    _ => P.LabelSelectorOperator.In,
                },
            };
            requirement.Values.AddRange(e.Values);
            return requirement;
        }));
        return message;
    }

    private static M.LabelSelector Decode(P.LabelSelector message) => new(
        SortedLabels(message.MatchLabels),
        Array(message.MatchExpressions, static e => new M.LabelSelectorRequirement(
            e.Key,
            e.Operator switch
            {
                P.LabelSelectorOperator.NotIn => M.LabelSelectorOperator.NotIn,
                P.LabelSelectorOperator.Exists => M.LabelSelectorOperator.Exists,
                P.LabelSelectorOperator.DoesNotExist => M.LabelSelectorOperator.DoesNotExist,
                _ => M.LabelSelectorOperator.In,
            },
            Array(e.Values, static v => v))));

    private static P.ParentReference Encode(M.ParentReference reference)
    {
        var message = new P.ParentReference { Name = reference.Name };
        if (reference.Group is { } group)
        {
            message.Group = group;
        }

        if (reference.Kind is { } kind)
        {
            message.Kind = kind;
        }

        if (reference.Namespace is { } ns)
        {
            message.Namespace = ns;
        }

        if (reference.SectionName is { } section)
        {
            message.SectionName = section;
        }

        if (reference.Port is { } port)
        {
            message.Port = port;
        }

        return message;
    }

    private static M.ParentReference Decode(P.ParentReference message) => new(
        message.HasGroup ? message.Group : null,
        message.HasKind ? message.Kind : null,
        message.HasNamespace ? message.Namespace : null,
        message.Name,
        message.HasSectionName ? message.SectionName : null,
        message.HasPort ? message.Port : null);

    private static P.TcpRouteRule Encode(M.TcpRouteRule rule)
    {
        var message = new P.TcpRouteRule();
        if (rule.Name is { } name)
        {
            message.Name = name;
        }

        message.BackendRefs.AddRange(rule.BackendRefs.Select(static b =>
        {
            var backend = new P.BackendReference { Name = b.Name };
            if (b.Group is { } group)
            {
                backend.Group = group;
            }

            if (b.Kind is { } kind)
            {
                backend.Kind = kind;
            }

            if (b.Namespace is { } ns)
            {
                backend.Namespace = ns;
            }

            if (b.Port is { } port)
            {
                backend.Port = port;
            }

            if (b.Weight is { } weight)
            {
                backend.Weight = weight;
            }

            return backend;
        }));
        return message;
    }

    private static M.TcpRouteRule Decode(P.TcpRouteRule message) => new(Array(message.BackendRefs, static b => new M.BackendReference(
        b.HasGroup ? b.Group : null,
        b.HasKind ? b.Kind : null,
        b.HasNamespace ? b.Namespace : null,
        b.Name,
        b.HasPort ? b.Port : null,
        b.HasWeight ? b.Weight : null)))
    {
        Name = message.HasName ? message.Name : null,
    };

    private static P.PolicyTargetReference Encode(M.PolicyTargetReference reference)
    {
        var message = new P.PolicyTargetReference { Group = reference.Group, Kind = reference.Kind, Name = reference.Name };
        if (reference.Namespace is { } ns)
        {
            message.Namespace = ns;
        }

        if (reference.SectionName is { } section)
        {
            message.SectionName = section;
        }

        return message;
    }

    private static M.PolicyTargetReference Decode(P.PolicyTargetReference message) => new(message.Group, message.Kind, message.Name)
    {
        Namespace = message.HasNamespace ? message.Namespace : null,
        SectionName = message.HasSectionName ? message.SectionName : null,
    };

    private static P.FsmHealthCheck? Encode(M.FsmHealthCheck? check)
    {
        if (check is null)
        {
            return null;
        }

        var message = new P.FsmHealthCheck { IntervalTicks = check.Interval.Ticks, MaxFails = check.MaxFails };
        if (check.FailTimeout is { } failTimeout)
        {
            message.FailTimeoutTicks = failTimeout.Ticks;
        }

        if (check.Path is { } path)
        {
            message.Path = path;
        }

        message.Matches.AddRange(check.Matches.Select(static m =>
        {
            var match = new P.HealthCheckMatch();
            match.StatusCodes.AddRange(m.StatusCodes);
            if (m.Body is { } body)
            {
                match.Body = body;
            }

            match.Headers.AddRange(m.Headers.Select(static h => new P.HttpHeaderValue { Name = h.Name, Value = h.Value }));
            return match;
        }));
        return message;
    }

    private static M.FsmHealthCheck? Decode(P.FsmHealthCheck? message) => message is null
        ? null
        : new M.FsmHealthCheck(
            TimeSpan.FromTicks(message.IntervalTicks),
            message.MaxFails,
            message.HasFailTimeoutTicks ? TimeSpan.FromTicks(message.FailTimeoutTicks) : null,
            message.HasPath ? message.Path : null,
            Array(message.Matches, static m => new M.HealthCheckMatch(
                Array(m.StatusCodes, static c => c),
                m.HasBody ? m.Body : null,
                Array(m.Headers, static h => new M.HttpHeaderValue(h.Name, h.Value)))));

    private static P.BackendTrafficPolicy Encode(M.BackendTrafficPolicy policy)
    {
        var message = new P.BackendTrafficPolicy { TcpKeepalive = Encode(policy.TcpKeepalive) };
        message.TargetRefs.AddRange(policy.TargetRefs.Select(Encode));
        if (policy.LoadBalancer is { } lb)
        {
            message.LoadBalancer = new P.LoadBalancerSpec { Type = lb.Type, HasSlowStart = lb.HasSlowStart };
            if (lb.ConsistentHashType is { } hash)
            {
                message.LoadBalancer.ConsistentHashType = hash;
            }

            if (lb.TableSize is { } size)
            {
                message.LoadBalancer.TableSize = size;
            }
        }

        if (policy.ActiveHealthCheck is { } active)
        {
            var check = message.ActiveHealthCheck = new P.ActiveHealthCheckSpec { Type = active.Type, TcpSend = Encode(active.TcpSend), TcpReceive = Encode(active.TcpReceive) };
            SetTicks(active.Timeout, t => check.TimeoutTicks = t);
            SetTicks(active.Interval, t => check.IntervalTicks = t);
            if (active.UnhealthyThreshold is { } unhealthy)
            {
                check.UnhealthyThreshold = unhealthy;
            }

            if (active.HealthyThreshold is { } healthy)
            {
                check.HealthyThreshold = healthy;
            }

            if (active.HttpPath is { } path)
            {
                check.HttpPath = path;
            }

            check.ExpectedStatuses.AddRange(active.ExpectedStatuses);
        }

        if (policy.PassiveHealthCheck is { } passive)
        {
            var check = message.PassiveHealthCheck = new P.PassiveHealthCheckSpec();
            if (passive.ConsecutiveLocalOriginFailures is { } failures)
            {
                check.ConsecutiveLocalOriginFailures = failures;
            }

            SetTicks(passive.Interval, t => check.IntervalTicks = t);
            SetTicks(passive.BaseEjectionTime, t => check.BaseEjectionTimeTicks = t);
            if (passive.MaxEjectionPercent is { } percent)
            {
                check.MaxEjectionPercent = percent;
            }
        }

        if (policy.PanicThreshold is { } panic)
        {
            message.PanicThreshold = panic;
        }

        if (policy.MaxConnections is { } max)
        {
            message.MaxConnections = max;
        }

        if (policy.MaxConnectionsPerEndpoint is { } perEndpoint)
        {
            message.MaxConnectionsPerEndpoint = perEndpoint;
        }

        if (policy.ProxyProtocolVersion is { } proxyProtocol)
        {
            message.ProxyProtocolVersion = proxyProtocol;
        }

        SetTicks(policy.ConnectTimeout, t => message.ConnectTimeoutTicks = t);
        return message;
    }

    private static M.BackendTrafficPolicy Decode(M.ObjectMeta meta, P.BackendTrafficPolicy message) => new(meta, Array(message.TargetRefs, Decode))
    {
        LoadBalancer = message.LoadBalancer is { } lb
            ? new M.LoadBalancerSpec(lb.Type, lb.HasConsistentHashType ? lb.ConsistentHashType : null, lb.HasTableSize ? lb.TableSize : null) { HasSlowStart = lb.HasSlowStart }
            : null,
        ActiveHealthCheck = message.ActiveHealthCheck is { } active
            ? new M.ActiveHealthCheckSpec(active.Type)
            {
                Timeout = active.HasTimeoutTicks ? TimeSpan.FromTicks(active.TimeoutTicks) : null,
                Interval = active.HasIntervalTicks ? TimeSpan.FromTicks(active.IntervalTicks) : null,
                UnhealthyThreshold = active.HasUnhealthyThreshold ? active.UnhealthyThreshold : null,
                HealthyThreshold = active.HasHealthyThreshold ? active.HealthyThreshold : null,
                HttpPath = active.HasHttpPath ? active.HttpPath : null,
                ExpectedStatuses = Array(active.ExpectedStatuses, static s => s),
                TcpSend = Decode(active.TcpSend),
                TcpReceive = Decode(active.TcpReceive),
            }
            : null,
        PassiveHealthCheck = message.PassiveHealthCheck is { } passive
            ? new M.PassiveHealthCheckSpec(
                passive.HasConsecutiveLocalOriginFailures ? passive.ConsecutiveLocalOriginFailures : null,
                passive.HasIntervalTicks ? TimeSpan.FromTicks(passive.IntervalTicks) : null,
                passive.HasBaseEjectionTimeTicks ? TimeSpan.FromTicks(passive.BaseEjectionTimeTicks) : null,
                passive.HasMaxEjectionPercent ? passive.MaxEjectionPercent : null)
            : null,
        PanicThreshold = message.HasPanicThreshold ? message.PanicThreshold : null,
        MaxConnections = message.HasMaxConnections ? message.MaxConnections : null,
        MaxConnectionsPerEndpoint = message.HasMaxConnectionsPerEndpoint ? message.MaxConnectionsPerEndpoint : null,
        ProxyProtocolVersion = message.HasProxyProtocolVersion ? message.ProxyProtocolVersion : null,
        TcpKeepalive = Decode(message.TcpKeepalive),
        ConnectTimeout = message.HasConnectTimeoutTicks ? TimeSpan.FromTicks(message.ConnectTimeoutTicks) : null,
    };

    private static P.HealthCheckPayload? Encode(M.HealthCheckPayload? payload)
    {
        if (payload is null)
        {
            return null;
        }

        var message = new P.HealthCheckPayload { Type = payload.Type };
        if (payload.Text is { } text)
        {
            message.Text = text;
        }

        if (payload.Binary is { } binary)
        {
            message.Binary = ByteString.CopyFrom(binary.Items.AsSpan());
        }

        return message;
    }

    private static M.HealthCheckPayload? Decode(P.HealthCheckPayload? message) => message is null
        ? null
        : new M.HealthCheckPayload(
            message.Type,
            message.HasText ? message.Text : null,
            message.HasBinary ? new M.EquatableArray<byte>([.. message.Binary.Span]) : null);

    private static P.TcpKeepaliveSpec? Encode(M.TcpKeepaliveSpec? keepalive)
    {
        if (keepalive is null)
        {
            return null;
        }

        var message = new P.TcpKeepaliveSpec();
        if (keepalive.Probes is { } probes)
        {
            message.Probes = probes;
        }

        SetTicks(keepalive.IdleTime, t => message.IdleTimeTicks = t);
        SetTicks(keepalive.Interval, t => message.IntervalTicks = t);
        return message;
    }

    private static M.TcpKeepaliveSpec? Decode(P.TcpKeepaliveSpec? message) => message is null
        ? null
        : new M.TcpKeepaliveSpec(
            message.HasProbes ? message.Probes : null,
            message.HasIdleTimeTicks ? TimeSpan.FromTicks(message.IdleTimeTicks) : null,
            message.HasIntervalTicks ? TimeSpan.FromTicks(message.IntervalTicks) : null);

    private static P.LocalObjectReference? Encode(M.LocalObjectReference? reference) =>
        reference is null ? null : new P.LocalObjectReference { Group = reference.Group, Kind = reference.Kind, Name = reference.Name };

    private static M.LocalObjectReference? Decode(P.LocalObjectReference? message) =>
        message is null ? null : new M.LocalObjectReference(message.Group, message.Kind, message.Name);

    private static P.ClientTrafficPolicy Encode(M.ClientTrafficPolicy policy)
    {
        var message = new P.ClientTrafficPolicy
        {
            TcpKeepalive = Encode(policy.TcpKeepalive),
            HasTlsHandshakeTimeout = policy.HasTlsHandshakeTimeout,
            HasMaxAcceptPerSocketEvent = policy.HasMaxAcceptPerSocketEvent,
            UploadBandwidth = Encode(policy.UploadBandwidth),
            DownloadBandwidth = Encode(policy.DownloadBandwidth),
        };
        message.TargetRefs.AddRange(policy.TargetRefs.Select(Encode));
        if (policy.ProxyProtocol is { } proxyProtocol)
        {
            message.ProxyProtocol = new P.ProxyProtocolSpec { Optional = proxyProtocol.Optional };
        }

        SetTicks(policy.IdleTimeout, t => message.IdleTimeoutTicks = t);
        SetTicks(policy.ConnectionInspectionTimeout, t => message.ConnectionInspectionTimeoutTicks = t);
        SetTicks(policy.HalfClosedTimeout, t => message.HalfClosedTimeoutTicks = t);
        SetTicks(policy.MaxConnectionDuration, t => message.MaxConnectionDurationTicks = t);
        if (policy.ConnectionLimit is { } limit)
        {
            message.ConnectionLimit = new P.ConnectionLimitSpec();
            if (limit.Value is { } value)
            {
                message.ConnectionLimit.Value = value;
            }

            SetTicks(limit.CloseDelay, t => message.ConnectionLimit.CloseDelayTicks = t);
        }

        if (policy.BufferLimit is { } buffer)
        {
            message.BufferLimit = buffer;
        }

        message.UnsupportedFields.AddRange(policy.UnsupportedFields);
        return message;
    }

    private static M.ClientTrafficPolicy Decode(M.ObjectMeta meta, P.ClientTrafficPolicy message) => new(meta, Array(message.TargetRefs, Decode))
    {
        ProxyProtocol = message.ProxyProtocol is { } proxyProtocol ? new M.ProxyProtocolSpec(proxyProtocol.Optional) : null,
        TcpKeepalive = Decode(message.TcpKeepalive),
        IdleTimeout = message.HasIdleTimeoutTicks ? TimeSpan.FromTicks(message.IdleTimeoutTicks) : null,
        ConnectionInspectionTimeout = message.HasConnectionInspectionTimeoutTicks ? TimeSpan.FromTicks(message.ConnectionInspectionTimeoutTicks) : null,
        HalfClosedTimeout = message.HasHalfClosedTimeoutTicks ? TimeSpan.FromTicks(message.HalfClosedTimeoutTicks) : null,
        HasTlsHandshakeTimeout = message.HasTlsHandshakeTimeout,
        ConnectionLimit = message.ConnectionLimit is { } limit
            ? new M.ConnectionLimitSpec(limit.HasValue ? limit.Value : null, limit.HasCloseDelayTicks ? TimeSpan.FromTicks(limit.CloseDelayTicks) : null)
            : null,
        BufferLimit = message.HasBufferLimit ? message.BufferLimit : null,
        MaxConnectionDuration = message.HasMaxConnectionDurationTicks ? TimeSpan.FromTicks(message.MaxConnectionDurationTicks) : null,
        HasMaxAcceptPerSocketEvent = message.HasMaxAcceptPerSocketEvent,
        UploadBandwidth = Decode(message.UploadBandwidth),
        DownloadBandwidth = Decode(message.DownloadBandwidth),
        UnsupportedFields = Array(message.UnsupportedFields, static f => f),
    };

    private static P.BandwidthLimitSpec? Encode(M.BandwidthLimitSpec? limit)
    {
        if (limit is null)
        {
            return null;
        }

        var message = new P.BandwidthLimitSpec { BytesPerSecond = limit.BytesPerSecond };
        if (limit.Burst is { } burst)
        {
            message.Burst = burst;
        }

        return message;
    }

    private static M.BandwidthLimitSpec? Decode(P.BandwidthLimitSpec? message) =>
        message is null ? null : new M.BandwidthLimitSpec(message.BytesPerSecond, message.HasBurst ? message.Burst : null);

    private static void SetTicks(TimeSpan? value, Action<long> set)
    {
        if (value is { } time)
        {
            set(time.Ticks);
        }
    }

    private static M.EquatableArray<TModel> Array<TMessage, TModel>(RepeatedField<TMessage> items, Func<TMessage, TModel> decode)
    {
        var builder = ImmutableArray.CreateBuilder<TModel>(items.Count);
        foreach (var item in items)
        {
            builder.Add(decode(item));
        }

        return new M.EquatableArray<TModel>(builder.MoveToImmutable());
    }
}
