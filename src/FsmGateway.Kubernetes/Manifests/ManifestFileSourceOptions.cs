using Microsoft.Extensions.Options;

namespace FsmGateway.Kubernetes.Manifests;

/// <summary>How <see cref="ManifestFileSource"/> watches and reads its files.</summary>
public sealed class ManifestFileSourceOptions
{
    /// <summary>The default <see cref="MaxFileSize"/>: 8 MiB.</summary>
    public const long DefaultMaxFileSize = 8 * 1024 * 1024;

    /// <summary>The largest <see cref="MaxFileSize"/> accepted: the reader's own bound, <see cref="ManifestReader.MaxFileBytes"/> (16 MiB).</summary>
    public const long MaxFileSizeLimit = ManifestReader.MaxFileBytes;

    /// <summary>How long file events must pause before the files are read again. Default 200 ms.</summary>
    public TimeSpan Settle { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// The longest a change waits for the events to pause: a file rewritten more often than <see cref="Settle"/> does
    /// not hold back every other edit. Default 800 ms, so with the pipeline's own debounce an edit applies within
    /// about a second.
    /// </summary>
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromMilliseconds(800);

    /// <summary>The largest manifest file read, in bytes; a larger one is a manifest error naming the file and the cap. Default 8 MiB.</summary>
    public long MaxFileSize { get; set; } = DefaultMaxFileSize;

    /// <summary>
    /// How long one file may take to read (a hung network file system) before it is skipped for that round and
    /// reported; its previous objects stay. Default 5 s.
    /// </summary>
    public TimeSpan ReadTimeout { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>Checks <see cref="ManifestFileSourceOptions"/>, naming each option that is out of range.</summary>
internal sealed class ManifestFileSourceOptionsValidator : IValidateOptions<ManifestFileSourceOptions>
{
    public ValidateOptionsResult Validate(string? name, ManifestFileSourceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = Problems(options).ToList();
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>Each problem with <paramref name="options"/>, naming the option.</summary>
    internal static IEnumerable<string> Problems(ManifestFileSourceOptions options)
    {
        if (options.Settle < TimeSpan.Zero || options.Settle > TimeSpan.FromMinutes(1))
        {
            yield return $"{nameof(ManifestFileSourceOptions.Settle)} must be between 0 and 1 minute (is {options.Settle}).";
        }

        if (options.MaxDelay < options.Settle || options.MaxDelay > TimeSpan.FromMinutes(1))
        {
            yield return $"{nameof(ManifestFileSourceOptions.MaxDelay)} must be at least {nameof(ManifestFileSourceOptions.Settle)} ({options.Settle}) and at most 1 minute (is {options.MaxDelay}).";
        }

        if (options.MaxFileSize is < 1 or > ManifestFileSourceOptions.MaxFileSizeLimit)
        {
            yield return $"{nameof(ManifestFileSourceOptions.MaxFileSize)} must be between 1 byte and {ManifestFileSourceOptions.MaxFileSizeLimit} bytes (16 MiB) (is {options.MaxFileSize}).";
        }

        if (options.ReadTimeout <= TimeSpan.Zero || options.ReadTimeout > TimeSpan.FromMinutes(10))
        {
            yield return $"{nameof(ManifestFileSourceOptions.ReadTimeout)} must be more than 0 and at most 10 minutes (is {options.ReadTimeout}).";
        }
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming every option out of range.</summary>
    internal static void ThrowIfInvalid(ManifestFileSourceOptions options)
    {
        var problems = Problems(options).ToList();
        if (problems.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", problems), nameof(options));
        }
    }
}
