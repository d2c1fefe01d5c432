namespace FsmGateway.Status;

/// <summary>
/// What a controller that provisions data planes found of them (Deployment availability, the Service's addresses,
/// unusable parameters): the pipeline compiles again with each new value, as it does with reported bind outcomes.
/// </summary>
public interface IProvisionedDataPlanesSource
{
    /// <summary>The latest observations first, then each change.</summary>
    IObservable<ProvisionedDataPlanes> DataPlanes { get; }
}
