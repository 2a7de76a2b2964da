namespace Gatehouse.Protocols.Postgres.Wire;

/// <summary>Frontend (client to server) message codes, protocol 3.0 (PostgreSQL docs, "Message Formats").</summary>
public enum FrontendCode : byte
{
    Bind = (byte)'B',
    Close = (byte)'C',
    CopyData = (byte)'d',
    CopyDone = (byte)'c',
    CopyFail = (byte)'f',
    Describe = (byte)'D',
    Execute = (byte)'E',
    Flush = (byte)'H',
    FunctionCall = (byte)'F',
    Parse = (byte)'P',
    Query = (byte)'Q',
    Sync = (byte)'S',
    Terminate = (byte)'X',
    /// <summary>PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse: only during authentication.</summary>
    Password = (byte)'p',
}

/// <summary>Backend (server to client) message codes, protocol 3.0.</summary>
public enum BackendCode : byte
{
    Authentication = (byte)'R',
    BackendKeyData = (byte)'K',
    BindComplete = (byte)'2',
    CloseComplete = (byte)'3',
    CommandComplete = (byte)'C',
    CopyData = (byte)'d',
    CopyDone = (byte)'c',
    CopyInResponse = (byte)'G',
    CopyOutResponse = (byte)'H',
    CopyBothResponse = (byte)'W',
    DataRow = (byte)'D',
    EmptyQueryResponse = (byte)'I',
    ErrorResponse = (byte)'E',
    FunctionCallResponse = (byte)'V',
    NegotiateProtocolVersion = (byte)'v',
    NoData = (byte)'n',
    NoticeResponse = (byte)'N',
    NotificationResponse = (byte)'A',
    ParameterDescription = (byte)'t',
    ParameterStatus = (byte)'S',
    ParseComplete = (byte)'1',
    PortalSuspended = (byte)'s',
    ReadyForQuery = (byte)'Z',
    RowDescription = (byte)'T',
}

/// <summary>The codes of AuthenticationX messages ('R').</summary>
public enum AuthenticationCode
{
    Ok = 0,
    KerberosV5 = 2,
    CleartextPassword = 3,
    Md5Password = 5,
    Gss = 7,
    GssContinue = 8,
    Sspi = 9,
    Sasl = 10,
    SaslContinue = 11,
    SaslFinal = 12,
}

/// <summary>Request codes of untyped startup-phase packets.</summary>
public static class StartupCodes
{
    /// <summary>Protocol 3.0: major 3 in the high 16 bits, minor 0.</summary>
    public const int Protocol30 = 3 << 16;

    /// <summary>1234.5679: SSLRequest.</summary>
    public const int SslRequest = 80877103;

    /// <summary>1234.5680: GSSENCRequest.</summary>
    public const int GssEncRequest = 80877104;

    /// <summary>1234.5678: CancelRequest.</summary>
    public const int CancelRequest = 80877102;
}

/// <summary>The SQLSTATE codes the gateway itself raises (Appendix A of the PostgreSQL docs).</summary>
public static class SqlState
{
    public const string ProtocolViolation = "08P01";
    public const string ConnectionFailure = "08006";
    public const string ConnectionRejected = "08004";
    public const string InvalidAuthorization = "28000";
    public const string InvalidPassword = "28P01";
    public const string InvalidCatalogName = "3D000";
    public const string InsufficientPrivilege = "42501";
    public const string TooManyConnections = "53300";
    public const string ProgramLimitExceeded = "54000";
    public const string AdminShutdown = "57P01";
    public const string IdleSessionTimeout = "57P05";
    public const string CannotConnectNow = "57P03";
    public const string FeatureNotSupported = "0A000";
    public const string InternalError = "XX000";
}
