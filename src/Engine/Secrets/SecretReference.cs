namespace Gatehouse.Engine.Secrets;

/// <summary>Where a credential the gateway holds comes from.</summary>
public enum SecretSourceKind : byte
{
    /// <summary>Written in the config file (fine for demos; prefer env or file in production).</summary>
    Value,
    /// <summary>An environment variable, read when the gateway connects.</summary>
    Environment,
    /// <summary>A file (a mounted secret), read when the gateway connects, trailing newline removed.</summary>
    File,
}

/// <summary>
/// A reference to a credential, resolved at the moment it is used so that a rotated file or variable takes
/// effect without a restart. <see cref="ToString"/> never shows the value.
/// </summary>
public sealed class SecretReference
{
    private readonly string? _value;

    private SecretReference(SecretSourceKind kind, string? value, string? name)
    {
        Kind = kind;
        _value = value;
        Name = name;
    }

    public SecretSourceKind Kind { get; }

    /// <summary>The variable name or file path (not secret); null for inline values.</summary>
    public string? Name { get; }

    public static SecretReference FromValue(string value) => new(SecretSourceKind.Value, value, null);

    public static SecretReference FromEnvironment(string variable) => new(SecretSourceKind.Environment, null, variable);

    public static SecretReference FromFile(string path) => new(SecretSourceKind.File, null, path);

    /// <summary>Reads the secret now. Throws <see cref="InvalidOperationException"/> naming the source, never the value.</summary>
    public string Resolve()
    {
        switch (Kind)
        {
            case SecretSourceKind.Value:
                return _value!;
            case SecretSourceKind.Environment:
                return System.Environment.GetEnvironmentVariable(Name!)
                       ?? throw new InvalidOperationException($"environment variable {Name} is not set");
            default:
                try
                {
                    return System.IO.File.ReadAllText(Name!).TrimEnd('\r', '\n');
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    throw new InvalidOperationException($"secret file {Name} cannot be read: {ex.GetType().Name}", ex);
                }
        }
    }

    public override string ToString() => Kind switch
    {
        SecretSourceKind.Value => "(inline secret)",
        SecretSourceKind.Environment => $"env:{Name}",
        _ => $"file:{Name}",
    };
}
