using System.Collections.Immutable;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace FsmGateway.Kubernetes.Mapping;

/// <summary>
/// Reads typed fields out of one JSON object while tracking the field path (<c>spec.listeners[1].port</c>),
/// so every complaint names the exact field, the way the API server's validation does.
/// </summary>
internal readonly struct FieldReader(JsonObject node, string path)
{
    public string Path { get; } = path;

    public string Field(string name) => Path.Length == 0 ? name : $"{Path}.{name}";

    public bool Has(string name) => node.TryGetPropertyValue(name, out var value) && value is not null;

    public string RequiredString(string name) =>
        OptionalString(name) is { Length: > 0 } value ? value : throw new MappingException(Field(name), "is required");

    public string? OptionalString(string name)
    {
        if (!node.TryGetPropertyValue(name, out var value) || value is null)
        {
            return null;
        }

        if (value is JsonValue scalar && scalar.GetValueKind() == JsonValueKind.String)
        {
            return scalar.GetValue<string>();
        }

        throw new MappingException(Field(name), $"expected a string, got {Describe(value)}");
    }

    /// <summary>An optional string that must follow a Kubernetes name rule (as the Gateway API schema's patterns require).</summary>
    public string? OptionalName(string name, ObjectNames.Rule rule) =>
        OptionalString(name) is { } value && ObjectNames.Problem(rule, value) is { } problem
            ? throw new MappingException(Field(name), problem)
            : OptionalString(name);

    /// <summary>A required string that must follow a Kubernetes name rule.</summary>
    public string RequiredName(string name, ObjectNames.Rule rule) =>
        ObjectNames.Problem(rule, RequiredString(name)) is { } problem ? throw new MappingException(Field(name), problem) : RequiredString(name);

    public int RequiredInt(string name, int min, int max) =>
        OptionalInt(name, min, max) ?? throw new MappingException(Field(name), "is required");

    public int? OptionalInt(string name, int min, int max)
    {
        if (!node.TryGetPropertyValue(name, out var value) || value is null)
        {
            return null;
        }

        if (value is JsonValue scalar && TryGetInteger(scalar, out var number))
        {
            return number >= min && number <= max
                ? (int)number
                : throw new MappingException(Field(name), $"{number} is out of range {min}..{max}");
        }

        throw new MappingException(Field(name), $"expected an integer, got {Describe(value)}");
    }

    public long? OptionalLong(string name)
    {
        if (!node.TryGetPropertyValue(name, out var value) || value is null)
        {
            return null;
        }

        return value is JsonValue scalar && TryGetInteger(scalar, out var number)
            ? number
            : throw new MappingException(Field(name), $"expected an integer, got {Describe(value)}");
    }

    public bool? OptionalBool(string name)
    {
        if (!node.TryGetPropertyValue(name, out var value) || value is null)
        {
            return null;
        }

        return value.GetValueKind() switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new MappingException(Field(name), $"expected true or false, got {Describe(value)}"),
        };
    }

    public DateTimeOffset? OptionalTimestamp(string name)
    {
        var text = OptionalString(name);
        if (text is null)
        {
            return null;
        }

        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time)
            ? time.ToUniversalTime()
            : throw new MappingException(Field(name), $"'{LogText.Escape(text)}' is not an RFC 3339 timestamp");
    }

    /// <summary>
    /// An optional Gateway API duration (GEP-2257): one to four of <c>1..5 digits</c> + <c>h</c>|<c>m</c>|<c>s</c>|<c>ms</c>,
    /// e.g. <c>1h30m</c>, <c>500ms</c>, <c>0s</c>; the pattern FSM's and Envoy Gateway's policy CRDs validate with.
    /// </summary>
    public TimeSpan? OptionalDuration(string name)
    {
        var text = OptionalString(name);
        if (text is null)
        {
            return null;
        }

        return GatewayDuration.TryParse(text, out var duration)
            ? duration
            : throw new MappingException(Field(name), $"'{LogText.Escape(text)}' is not a duration: one to four of a number (up to 5 digits) and a unit h, m, s or ms, e.g. 1s, 500ms, 1m30s");
    }

    /// <summary>
    /// An optional Kubernetes quantity of bytes: an integer, or a string of digits with an optional binary (<c>Ki</c>,
    /// <c>Mi</c>, <c>Gi</c>, <c>Ti</c>) or decimal (<c>k</c>, <c>M</c>, <c>G</c>, <c>T</c>) suffix, e.g. <c>32768</c>,
    /// <c>32Ki</c>, <c>1M</c>; in <paramref name="min"/>..<paramref name="max"/>. Fractions and exponents are refused.
    /// </summary>
    public long? OptionalQuantity(string name, long min, long max)
    {
        if (!node.TryGetPropertyValue(name, out var value) || value is null)
        {
            return null;
        }

        long number;
        if (value is JsonValue scalar && TryGetInteger(scalar, out var integer))
        {
            number = integer;
        }
        else if (value is JsonValue text && text.GetValueKind() == JsonValueKind.String)
        {
            var quantity = text.GetValue<string>();
            if (!Quantity.TryParse(quantity, out number))
            {
                throw new MappingException(Field(name), $"'{LogText.Escape(quantity)}' is not a quantity of bytes: digits with an optional suffix Ki, Mi, Gi, Ti, k, M, G or T, e.g. 32Ki");
            }
        }
        else
        {
            throw new MappingException(Field(name), $"expected a quantity, got {Describe(value)}");
        }

        return number >= min && number <= max
            ? number
            : throw new MappingException(Field(name), $"{number} is out of range {min}..{max}");
    }

    /// <summary>An optional string that must be one of <paramref name="allowed"/> (the schema's enum).</summary>
    public string? OptionalOneOf(string name, params string[] allowed)
    {
        var text = OptionalString(name);
        return text is null || allowed.Contains(text, StringComparer.Ordinal)
            ? text
            : throw new MappingException(Field(name), $"'{LogText.Escape(text)}' is not one of {string.Join(", ", allowed)}");
    }

    /// <summary>A required string that must be one of <paramref name="allowed"/>.</summary>
    public string RequiredOneOf(string name, params string[] allowed) =>
        OptionalOneOf(name, allowed) ?? throw new MappingException(Field(name), "is required");

    /// <summary>An optional list of integers, each in <paramref name="min"/>..<paramref name="max"/>.</summary>
    public ImmutableArray<int> Ints(string name, int min, int max)
    {
        if (!node.TryGetPropertyValue(name, out var value) || value is null)
        {
            return [];
        }

        if (value is not JsonArray array)
        {
            throw new MappingException(Field(name), $"expected a list, got {Describe(value)}");
        }

        var field = Field(name);
        var items = ImmutableArray.CreateBuilder<int>(array.Count);
        for (var i = 0; i < array.Count; i++)
        {
            if (array[i] is not JsonValue scalar || !TryGetInteger(scalar, out var number))
            {
                throw new MappingException($"{field}[{i}]", $"expected an integer, got {Describe(array[i])}");
            }

            items.Add(number >= min && number <= max ? (int)number : throw new MappingException($"{field}[{i}]", $"{number} is out of range {min}..{max}"));
        }

        return items.MoveToImmutable();
    }

    /// <summary>An optional <c>int64</c> in <paramref name="min"/>..<paramref name="max"/>.</summary>
    public long? OptionalLong(string name, long min, long max) =>
        OptionalLong(name) is not { } number ? null
        : number >= min && number <= max ? number
        : throw new MappingException(Field(name), $"{number} is out of range {min}..{max}");

    public T OptionalEnum<T>(string name, T fallback)
        where T : struct, Enum
    {
        var text = OptionalString(name);
        if (text is null)
        {
            return fallback;
        }

        return Enum.GetNames<T>().Contains(text, StringComparer.Ordinal)
            ? Enum.Parse<T>(text)
            : throw new MappingException(Field(name), $"'{LogText.Escape(text)}' is not one of {string.Join(", ", Enum.GetNames<T>())}");
    }

    public T RequiredEnum<T>(string name)
        where T : struct, Enum =>
        Has(name) ? OptionalEnum(name, default(T)) : throw new MappingException(Field(name), "is required");

    public FieldReader? OptionalObject(string name)
    {
        if (!node.TryGetPropertyValue(name, out var value) || value is null)
        {
            return null;
        }

        return value is JsonObject child
            ? new FieldReader(child, Field(name))
            : throw new MappingException(Field(name), $"expected an object, got {Describe(value)}");
    }

    public FieldReader RequiredObject(string name) =>
        OptionalObject(name) ?? throw new MappingException(Field(name), "is required");

    /// <summary>The items of an array of objects; an absent array is empty.</summary>
    public ImmutableArray<T> Objects<T>(string name, Func<FieldReader, T> read)
    {
        if (!node.TryGetPropertyValue(name, out var value) || value is null)
        {
            return [];
        }

        if (value is not JsonArray array)
        {
            throw new MappingException(Field(name), $"expected a list, got {Describe(value)}");
        }

        var items = ImmutableArray.CreateBuilder<T>(array.Count);
        for (var i = 0; i < array.Count; i++)
        {
            var itemPath = $"{Field(name)}[{i}]";
            items.Add(array[i] is JsonObject item
                ? read(new FieldReader(item, itemPath))
                : throw new MappingException(itemPath, $"expected an object, got {Describe(array[i])}"));
        }

        return items.MoveToImmutable();
    }

    public ImmutableArray<string> Strings(string name)
    {
        if (!node.TryGetPropertyValue(name, out var value) || value is null)
        {
            return [];
        }

        if (value is not JsonArray array)
        {
            throw new MappingException(Field(name), $"expected a list, got {Describe(value)}");
        }

        var field = Field(name);
        return [.. array.Select((item, i) => item is JsonValue scalar && scalar.GetValueKind() == JsonValueKind.String
            ? scalar.GetValue<string>()
            : throw new MappingException($"{field}[{i}]", $"expected a string, got {Describe(item)}"))];
    }

    public ImmutableSortedDictionary<string, string> StringMap(string name)
    {
        var map = ImmutableSortedDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        if (OptionalObject(name) is not { } child)
        {
            return map.ToImmutable();
        }

        foreach (var (key, _) in child.Node)
        {
            map[key] = child.OptionalString(key) ?? string.Empty;
        }

        return map.ToImmutable();
    }

    public JsonObject Node => node;

    private static string Describe(JsonNode? value) => value switch
    {
        null => "null",
        JsonObject => "an object",
        JsonArray => "a list",
        _ => value.GetValueKind() switch
        {
            JsonValueKind.String => $"the string '{LogText.Escape(value.GetValue<string>())}'",
            JsonValueKind.Number => $"the number {value.ToJsonString()}",
            JsonValueKind.True or JsonValueKind.False => $"the boolean {value.ToJsonString()}",
            _ => LogText.Escape(value.ToJsonString()),
        },
    };

    /// <summary>An integer, whether the tree was parsed (JSON element) or built in code (int, long, ...).</summary>
    private static bool TryGetInteger(JsonValue scalar, out long number)
    {
        number = 0;
        return scalar.GetValueKind() == JsonValueKind.Number
            && (scalar.TryGetValue(out number)
                || long.TryParse(scalar.ToJsonString(), System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out number));
    }
}
