using System.Net;
using FsmGateway.Routing;
using FsmGateway.Transport.Proxy;

namespace FsmGateway.Transport.LoadBalancing;

/// <summary>
/// One connection's choice of endpoint within a backend, across its connect attempts: the backend's policy picks
/// among the candidates, an endpoint at its connection cap is skipped, and an endpoint whose connect failed leaves
/// the candidates for the next attempt. A mutable struct kept in the connection handler's state: the pick allocates
/// nothing (the policy's context is the thread's own, see <see cref="EndpointPickContext"/>); only a retry copies
/// the candidates.
/// </summary>
internal struct EndpointSelection
{
    private readonly BackendRuntime _runtime;
    private readonly AvailableEndpoints _available;
    private readonly EndPoint? _client;
    private BackendEndpoint[] _candidates;
    private EndpointState[] _states;
    private long _sequence;
    private int _attempt;

    /// <summary>Starts the choice among <paramref name="available"/>.</summary>
    /// <param name="runtime">The backend's runtime: its policy, caps and shared counter.</param>
    /// <param name="available">The backend's available endpoints now.</param>
    /// <param name="client">The client's address, as the policy sees it (the PROXY protocol source, once parsed).</param>
    public EndpointSelection(BackendRuntime runtime, AvailableEndpoints available, EndPoint? client)
    {
        _runtime = runtime;
        _available = available;
        _client = client;
        _candidates = available.Endpoints;
        _states = available.States;
        _sequence = -1;
        _attempt = 0;
    }

    /// <summary>The endpoints left to try.</summary>
    public readonly int Candidates => _candidates.Length;

    /// <summary>
    /// Picks a candidate and counts a connection on it (<see cref="EndpointState.Acquire"/>, to be released by the
    /// caller). With a per-endpoint cap, a candidate at its cap is skipped for the next one after it.
    /// </summary>
    /// <param name="endpoint">The endpoint picked.</param>
    /// <param name="state">Its state.</param>
    /// <returns>The candidate's index, or -1 when every candidate is at its cap.</returns>
    public int Pick(out BackendEndpoint endpoint, out EndpointState state)
    {
        var count = _candidates.Length;
        var context = EndpointPickContext.For(_client, _runtime, _available, _candidates, _states, _sequence, _attempt);
        int index;
        try
        {
            index = Math.Clamp(_runtime.Connect.Policy.Pick(context), 0, count - 1);
            _sequence = context.Sequence;
        }
        finally
        {
            context.Clear();
        }

        if (_runtime.Connect.MaxConnectionsPerEndpoint is not { } limit)
        {
            _states[index].Acquire();
            endpoint = _candidates[index];
            state = _states[index];
            return index;
        }

        for (var step = 0; step < count; step++)
        {
            var i = (index + step) % count;
            if (_states[i].TryAcquire(limit))
            {
                endpoint = _candidates[i];
                state = _states[i];
                return i;
            }
        }

        endpoint = default;
        state = null!;
        return -1;
    }

    /// <summary>The connect to candidate <paramref name="index"/> failed: it is not offered again to this connection.</summary>
    /// <param name="index">The index <see cref="Pick"/> returned.</param>
    public void Failed(int index)
    {
        var endpoints = new BackendEndpoint[_candidates.Length - 1];
        var states = new EndpointState[_states.Length - 1];
        for (int i = 0, j = 0; i < _states.Length; i++)
        {
            if (i != index)
            {
                endpoints[j] = _candidates[i];
                states[j++] = _states[i];
            }
        }

        _candidates = endpoints;
        _states = states;
        _attempt++;
    }
}
