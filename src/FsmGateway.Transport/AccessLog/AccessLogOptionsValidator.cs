namespace FsmGateway.Transport.AccessLog;

/// <summary>Checks <see cref="AccessLogOptions"/> (as <c>ProxyOptions.AccessLog</c>), naming each bad option.</summary>
internal static class AccessLogOptionsValidator
{
    public static void Validate(AccessLogOptions options, List<string> failures)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!Enum.IsDefined(options.Format))
        {
            failures.Add($"ProxyOptions.AccessLog.Format must be Json or Text (is {(int)options.Format})");
        }

        if (options.QueueCapacity is < 1 or > AccessLogOptions.MaxQueueCapacity)
        {
            failures.Add($"ProxyOptions.AccessLog.QueueCapacity must be between 1 and {AccessLogOptions.MaxQueueCapacity} lines (is {options.QueueCapacity})");
        }

        if (options.Destination is not { } destination || destination is AccessLogOptions.StandardOutput or AccessLogOptions.StandardError)
        {
            return;
        }

        if (string.IsNullOrWhiteSpace(destination))
        {
            failures.Add("ProxyOptions.AccessLog.Destination must be stdout, stderr or a file path (is empty); null for no access log");
            return;
        }

        string full;
        try
        {
            full = Path.GetFullPath(destination);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            failures.Add($"ProxyOptions.AccessLog.Destination '{LogText.Escape(destination)}' is not a file path: {e.Message}");
            return;
        }

        if (Directory.Exists(full))
        {
            failures.Add($"ProxyOptions.AccessLog.Destination '{LogText.Escape(destination)}' is a folder, not a file");
        }
        else if (Path.GetDirectoryName(full) is { } folder && !Directory.Exists(folder))
        {
            failures.Add($"ProxyOptions.AccessLog.Destination '{LogText.Escape(destination)}': the folder '{LogText.Escape(folder)}' does not exist");
        }
    }
}
