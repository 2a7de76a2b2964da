using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Gatehouse.Engine;
using Gatehouse.Host.Config;
using Gatehouse.Host.State;
using Gatehouse.Policy.Access;
using Gatehouse.Policy.Approvals;
using Gatehouse.Policy.Identity;
using Gatehouse.Policy.Rules;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Host.Admin;

/// <summary>
/// The admin HTTP API (JSON over Kestrel, minimal APIs): held statements' approvals, access requests, grants,
/// live sessions, audit. Every request but <c>GET /health</c> must carry <c>Authorization: Bearer TOKEN</c>;
/// the token is compared in constant time. The endpoints are listed in docs/configuration.md.
/// </summary>
/// <remarks>
/// The token is an operator's credential: whoever holds it may approve, deny and revoke. The names in
/// <c>approver</c> and <c>by</c> are recorded as given (and an approver equal to the requester is refused), but not
/// authenticated: give the token only to the people who may decide.
/// </remarks>
public sealed class AdminEndpoint : IAsyncDisposable
{
    /// <summary>The largest request body accepted: decisions and requests are a few hundred bytes.</summary>
    private const long MaxBodySize = 64 * 1024;

    private readonly AdminConfig _config;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly AccessService _access;
    private readonly StoredApprovalBroker _approvals;
    private readonly Gateway _gateway;
    private readonly PolicyStore _policy;
    private readonly IStateStore _store;
    private readonly int _schemaVersion;
    private byte[] _tokenHash = [];
    private WebApplication? _app;

    private const string ActorKey = "gatehouse.actor";

    private readonly IdentityProviderSet _providers;

    public AdminEndpoint(AdminConfig config, ILoggerFactory loggerFactory, AccessService access, StoredApprovalBroker approvals, Gateway gateway,
        PolicyStore policy, IStateStore store, int schemaVersion, IdentityProviderSet? providers = null)
    {
        _providers = providers ?? IdentityProviderSet.Empty;
        _config = config;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger("Gatehouse.Admin");
        _access = access;
        _approvals = approvals;
        _gateway = gateway;
        _policy = policy;
        _store = store;
        _schemaVersion = schemaVersion;
    }

    /// <summary>The bound address (port 0 resolved), once started.</summary>
    public IPEndPoint? EndPoint { get; private set; }

    /// <summary>The base URL clients on this machine use, once started.</summary>
    public Uri? Url => EndPoint is null ? null : _config.BaseUrl(EndPoint);

    /// <summary>
    /// Reads the token (an unset variable or a short token stops the start: an admin API nobody can use, or anyone
    /// can guess into, is a configuration error) and starts listening.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        string token;
        try
        {
            token = _config.Token.Resolve();
        }
        catch (InvalidOperationException ex)
        {
            throw new InvalidOperationException($"admin.token: {ex.Message}", ex);
        }

        if (token.Length < ConfigLoader.MinAdminTokenLength)
        {
            throw new InvalidOperationException($"admin.token ({_config.Token}) must be at least {ConfigLoader.MinAdminTokenLength} characters");
        }

        _tokenHash = SHA256.HashData(Encoding.UTF8.GetBytes(token));

        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "gatehouse-admin" });
        builder.Services.AddSingleton<ILoggerFactory>(new QuietLoggerFactory(_loggerFactory));
        builder.Services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        builder.Services.AddRoutingCore();
        builder.WebHost.UseKestrelCore().ConfigureKestrel(options =>
        {
            options.AddServerHeader = false;
            options.Limits.MaxRequestBodySize = MaxBodySize;
            options.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
            options.Listen(_config.EndPoint, listen =>
            {
                if (_config.Certificate is { } certificate)
                {
                    listen.UseHttps(certificate);
                }
            });
        });

        var app = builder.Build();
        app.Use(AuthenticateAsync);
        Map(app);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        _app = app;

        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        EndPoint = addresses.Select(a => new Uri(a)).Select(u => new IPEndPoint(IPAddress.Parse(u.Host.Trim('[', ']')), u.Port)).FirstOrDefault()
                   ?? _config.EndPoint;
        StateLog.AdminListening(_logger, Url!.ToString());
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await _app.DisposeAsync().ConfigureAwait(false);
            _app = null;
        }
    }

    // ---- Authentication -------------------------------------------------------------------------------------------

    /// <summary>
    /// A person's own access token, when the config lets people in (admin.identities / admin.groups): checked by the
    /// identity providers like a login token. The request then acts as that identity, whatever names its body gives.
    /// Returns why it is refused, or null.
    /// </summary>
    private async Task<string?> AuthenticatePersonAsync(HttpContext context, string bearer)
    {
        if (!_config.AcceptsTokens || _providers.Count == 0 || !JwtFormat.LooksLikeJwt(Encoding.UTF8.GetBytes(bearer)))
        {
            return "wrong token";
        }

        var check = await _providers.ValidateAsync(bearer, context.RequestAborted).ConfigureAwait(false);
        if (check.Identity is not { } person)
        {
            return "access token refused: " + check.Reason;
        }

        bool allowed = _config.Identities?.Contains(person.Name, StringComparer.Ordinal) == true
                       || (_config.Groups is { } groups && person.Groups.Any(g => groups.Contains(g, StringComparer.Ordinal)));
        if (!allowed)
        {
            return $"{person.Name} is not among admin.identities or admin.groups";
        }

        context.Items[ActorKey] = person.Name;
        return null;
    }

    /// <summary>Who acts: the token's identity when a person authenticated with one, else the name the body gives.</summary>
    private static string? Actor(HttpContext context, string? named) => context.Items[ActorKey] as string ?? named;

    private async Task AuthenticateAsync(HttpContext context, Func<Task> next)
    {
        if (context.Request.Path == "/health" && HttpMethods.IsGet(context.Request.Method))
        {
            await next().ConfigureAwait(false);
            return;
        }

        string header = context.Request.Headers.Authorization.ToString();
        string? why = null;
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            why = "no bearer token";
        }
        else
        {
            // Hashes first: equal lengths, so the comparison's time says nothing about the token's length either.
            string bearer = header["Bearer ".Length..].Trim();
            var presented = SHA256.HashData(Encoding.UTF8.GetBytes(bearer));
            if (!CryptographicOperations.FixedTimeEquals(presented, _tokenHash))
            {
                why = await AuthenticatePersonAsync(context, bearer).ConfigureAwait(false);
            }
        }

        if (why is not null)
        {
            StateLog.AdminUnauthorized(_logger, context.Request.Method, context.Request.Path, context.Connection.RemoteIpAddress?.ToString(), why);
            context.Response.Headers.WWWAuthenticate = "Bearer realm=\"gatehouse\"";
            await WriteAsync(context, StatusCodes.Status401Unauthorized,
                new ErrorView("the admin API needs Authorization: Bearer TOKEN with the gateway's admin token", "unauthorized")).ConfigureAwait(false);
            return;
        }

        try
        {
            await next().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !context.RequestAborted.IsCancellationRequested)
        {
            StateLog.AdminFailed(_logger, context.Request.Method, context.Request.Path, ex);
            if (!context.Response.HasStarted)
            {
                await WriteAsync(context, StatusCodes.Status500InternalServerError, new ErrorView("internal error; see the gateway's log", "internal"))
                    .ConfigureAwait(false);
            }
        }
    }

    // ---- Routes -----------------------------------------------------------------------------------------------------

    private void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/health", context => WriteAsync(context, 200,
            new HealthView("ok", _gateway.Sessions.Count, _policy.Current.Version, _schemaVersion)));

        app.MapGet("/approvals", async context =>
        {
            var list = await _approvals.ListAsync(All(context), cancellationToken: context.RequestAborted).ConfigureAwait(false);
            await WriteAsync(context, 200, list.Select(ApprovalView.From).ToList()).ConfigureAwait(false);
        });
        app.MapGet("/approvals/{id}", async context =>
        {
            var record = await _approvals.FindAsync(Id(context), context.RequestAborted).ConfigureAwait(false);
            await (record is null ? NotFound(context, "approval request") : WriteAsync(context, 200, ApprovalView.From(record))).ConfigureAwait(false);
        });
        app.MapPost("/approvals/{id}/approve", context => DecideApprovalAsync(context, approve: true));
        app.MapPost("/approvals/{id}/deny", context => DecideApprovalAsync(context, approve: false));

        app.MapPost("/access/requests", RequestAccessAsync);
        app.MapGet("/access/requests", async context =>
        {
            var list = await _access.ListRequestsAsync(All(context), context.RequestAborted).ConfigureAwait(false);
            await WriteAsync(context, 200, list.Select(r => AccessRequestView.From(r)).ToList()).ConfigureAwait(false);
        });
        app.MapGet("/access/requests/{id}", async context =>
        {
            var request = await _access.GetRequestAsync(Id(context), context.RequestAborted).ConfigureAwait(false);
            await (request is null ? NotFound(context, "access request") : WriteAsync(context, 200, AccessRequestView.From(request))).ConfigureAwait(false);
        });
        app.MapPost("/access/requests/{id}/approve", context => DecideAccessAsync(context, approve: true));
        app.MapPost("/access/requests/{id}/deny", context => DecideAccessAsync(context, approve: false));

        app.MapGet("/grants", async context =>
        {
            var list = await _access.ListGrantsAsync(All(context), context.RequestAborted).ConfigureAwait(false);
            var now = _access.Now;
            await WriteAsync(context, 200, list.Select(g => GrantView.From(g, now)).ToList()).ConfigureAwait(false);
        });
        app.MapGet("/grants/{id}", async context =>
        {
            var grant = await _access.GetGrantAsync(Id(context), context.RequestAborted).ConfigureAwait(false);
            await (grant is null ? NotFound(context, "grant") : WriteAsync(context, 200, GrantView.From(grant, _access.Now))).ConfigureAwait(false);
        });
        app.MapPost("/grants/{id}/revoke", RevokeAsync);

        app.MapGet("/sessions", context => WriteAsync(context, 200,
            _gateway.Sessions.List().OrderBy(s => s.Id).Select(SessionView.From).ToList()));

        app.MapGet("/audit", async context =>
        {
            int limit = int.TryParse(context.Request.Query["limit"], out int l) && l is > 0 and <= 10_000 ? l : 200;
            DateTimeOffset? since = DateTimeOffset.TryParse(context.Request.Query["since"], out var s) ? s : null;
            var events = await _store.ListAuditAsync(since, limit, context.RequestAborted).ConfigureAwait(false);
            await WriteAsync(context, 200, events.Select(AuditView.From).ToList()).ConfigureAwait(false);
        });
    }

    private async Task DecideApprovalAsync(HttpContext context, bool approve)
    {
        var body = await ReadAsync<DecisionBody>(context).ConfigureAwait(false);
        if (body is null)
        {
            return;
        }

        string? approver = Actor(context, body.Approver);
        if (string.IsNullOrWhiteSpace(approver))
        {
            await Invalid(context, "the body needs \"approver\": the name of the person deciding").ConfigureAwait(false);
            return;
        }

        string id = Id(context);
        var result = await _approvals.DecideAsync(id, approver, approve, body.Reason, context.RequestAborted).ConfigureAwait(false);
        var record = await _approvals.FindAsync(id, context.RequestAborted).ConfigureAwait(false);
        await (result switch
        {
            ApprovalDecisionResult.Done => WriteAsync(context, 200, ApprovalView.From(record!)),
            ApprovalDecisionResult.NotFound => NotFound(context, "approval request"),
            ApprovalDecisionResult.SelfApprovalRefused => WriteAsync(context, 403,
                new ErrorView($"{approver} sent this statement and cannot approve it; someone else must", "self_approval_refused")),
            _ => WriteAsync(context, 409,
                new ErrorView($"approval request {id} is {(record is null ? "not pending" : SqliteStateStore.Name(record.State))}; a request is decided once",
                    "not_pending")),
        }).ConfigureAwait(false);
    }

    private async Task RequestAccessAsync(HttpContext context)
    {
        var body = await ReadAsync<AccessRequestBody>(context).ConfigureAwait(false);
        if (body is null)
        {
            return;
        }

        if (!DurationText.TryParse(body.Duration, out var duration) || duration <= TimeSpan.Zero)
        {
            await Invalid(context, "the body needs \"duration\": how long the grant should last, such as 30m, 1h or 1h30m").ConfigureAwait(false);
            return;
        }

        var result = await _access.RequestAsync(Actor(context, body.Identity) ?? "", body.Connection ?? "", body.Role, duration, body.Reason ?? "", context.RequestAborted)
            .ConfigureAwait(false);
        await WriteResultAsync(context, result, created: true).ConfigureAwait(false);
    }

    private async Task DecideAccessAsync(HttpContext context, bool approve)
    {
        var body = await ReadAsync<DecisionBody>(context).ConfigureAwait(false);
        if (body is null)
        {
            return;
        }

        var result = await _access.DecideAsync(Id(context), Actor(context, body.Approver) ?? "", approve, body.Reason, context.RequestAborted).ConfigureAwait(false);
        await WriteResultAsync(context, result, created: false).ConfigureAwait(false);
    }

    private async Task RevokeAsync(HttpContext context)
    {
        var body = await ReadAsync<RevokeBody>(context).ConfigureAwait(false);
        if (body is null)
        {
            return;
        }

        var result = await _access.RevokeAsync(Id(context), Actor(context, body.By) ?? "", body.Reason, context.RequestAborted).ConfigureAwait(false);
        if (result.Succeeded)
        {
            await WriteAsync(context, 200, GrantView.From(result.Grant!, _access.Now, result.SessionsEnded)).ConfigureAwait(false);
            return;
        }

        await WriteResultAsync(context, result, created: false).ConfigureAwait(false);
    }

    private Task WriteResultAsync(HttpContext context, AccessResult result, bool created)
    {
        var now = _access.Now;
        return result.Outcome switch
        {
            AccessOutcome.Done => WriteAsync(context, created ? 201 : 200,
                AccessRequestView.From(result.Request!, result.Grant is null ? null : GrantView.From(result.Grant, now))),
            AccessOutcome.NotFound => WriteAsync(context, 404, new ErrorView(result.Error!, "not_found")),
            AccessOutcome.NotPending => WriteAsync(context, 409, new ErrorView(result.Error!, "not_pending")),
            AccessOutcome.SelfApprovalRefused => WriteAsync(context, 403, new ErrorView(result.Error!, "self_approval_refused")),
            _ => WriteAsync(context, 400, new ErrorView(result.Error!, "invalid")),
        };
    }

    // ---- Plumbing ---------------------------------------------------------------------------------------------------

    private static string Id(HttpContext context) => context.Request.RouteValues["id"] as string ?? "";

    private static bool All(HttpContext context) =>
        context.Request.Query["all"].ToString() is "true" or "1" or "yes";

    /// <summary>The JSON body; null after answering 400 when it is missing or malformed.</summary>
    private static async Task<T?> ReadAsync<T>(HttpContext context)
        where T : class
    {
        try
        {
            var body = await JsonSerializer.DeserializeAsync<T>(context.Request.Body, AdminJson.Options, context.RequestAborted).ConfigureAwait(false);
            if (body is not null)
            {
                return body;
            }
        }
        catch (JsonException ex)
        {
            await Invalid(context, $"the body is not valid JSON: {ex.Message}").ConfigureAwait(false);
            return null;
        }

        await Invalid(context, "the request needs a JSON body").ConfigureAwait(false);
        return null;
    }

    private static Task Invalid(HttpContext context, string message) => WriteAsync(context, 400, new ErrorView(message, "invalid"));

    private static Task NotFound(HttpContext context, string what) =>
        WriteAsync(context, 404, new ErrorView($"no {what} {Id(context)}", "not_found"));

    private static Task WriteAsync<T>(HttpContext context, int status, T value)
    {
        context.Response.StatusCode = status;
        context.Response.Headers.CacheControl = "no-store";
        return context.Response.WriteAsJsonAsync(value, AdminJson.Options, context.RequestAborted);
    }
}
