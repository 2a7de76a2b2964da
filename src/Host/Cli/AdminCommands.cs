using System.CommandLine;
using Gatehouse.Host.Admin;
using Gatehouse.Host.Config;
using Gatehouse.Policy.Rules;

namespace Gatehouse.Host.Cli;

/// <summary>
/// <c>gatehouse access ...</c> and <c>gatehouse approvals ...</c>: just-in-time grants and held statements, through
/// a running gateway's admin API. Where the gateway is: <c>--config FILE</c> (its <c>admin</c> section gives the
/// address and the token), or <c>--url URL</c> (or <c>GATEHOUSE_ADMIN_URL</c>) with the token in
/// <c>GATEHOUSE_ADMIN_TOKEN</c>. Exit codes: 0 done, 1 refused by the gateway, 2 usage or config problem,
/// 3 gateway unreachable or failing.
/// </summary>
internal static class AdminCommands
{
    public const string TokenVariable = "GATEHOUSE_ADMIN_TOKEN";
    public const string UrlVariable = "GATEHOUSE_ADMIN_URL";

    public static Command Access()
    {
        var config = ConfigOption();
        var url = UrlOption();

        var connection = new Option<string>("--connection") { Description = "The connection to get access to (its name in the config)", Required = true };
        var role = new Option<string?>("--role") { Description = "The role to get; default: the role of the first grant binding that applies" };
        var duration = new Option<string>("--for") { Description = "How long, such as 30m, 1h or 1h30m (at most the binding's max_duration)", Required = true };
        var reason = new Option<string>("--reason") { Description = "Why: shown to the approver and kept in the audit log", Required = true };
        var requester = AsOption("The identity the grant is for");
        var request = new Command("request", "Ask for a just-in-time grant of a role on a connection") { connection, role, duration, reason, requester };
        request.SetAction((parse, ct) => RunAsync(parse, config, url, async (client, output) =>
        {
            if (!DurationText.TryParse(parse.GetValue(duration), out var span) || span <= TimeSpan.Zero)
            {
                throw new AdminCallException($"--for must be a duration such as 30m, 1h or 1h30m, not '{parse.GetValue(duration)}'", AdminClient.Usage);
            }

            var created = await client.PostAsync<AccessRequestView>("access/requests", new AccessRequestBody(
                Who(parse, requester), parse.GetValue(connection), parse.GetValue(role), DurationText.Format(span), parse.GetValue(reason)), ct).ConfigureAwait(false);
            if (created.Grant is { } grant)
            {
                output.WriteLine($"Access request {created.Id} approved by {created.DecidedBy}: grant {grant.Id} gives {grant.Identity} role {grant.Role} "
                                 + $"on {grant.Connection} until {TextTable.Time(grant.End)}.");
            }
            else
            {
                output.WriteLine($"Access request {created.Id} is pending: {created.Identity} asks for role {created.Role} on {created.Connection} for {created.Duration}.");
                output.WriteLine($"Someone else approves it with: gatehouse access approve {created.Id}");
            }
        }));

        var decideId = new Argument<string>("id") { Description = "The access request's id (ar_...)" };
        var approver = AsOption("Who approves");
        var approveReason = new Option<string?>("--reason") { Description = "Why (kept in the audit log)" };
        var approve = new Command("approve", "Approve a pending access request: its grant starts now") { decideId, approver, approveReason };
        approve.SetAction((parse, ct) => RunAsync(parse, config, url, async (client, output) =>
        {
            var decided = await client.PostAsync<AccessRequestView>($"access/requests/{Escape(parse.GetValue(decideId))}/approve",
                new DecisionBody(Who(parse, approver), parse.GetValue(approveReason)), ct).ConfigureAwait(false);
            var grant = decided.Grant;
            output.WriteLine(grant is null
                ? $"Access request {decided.Id} approved."
                : $"Access request {decided.Id} approved: grant {grant.Id} gives {grant.Identity} role {grant.Role} on {grant.Connection} until {TextTable.Time(grant.End)}.");
        }));

        var denyId = new Argument<string>("id") { Description = "The access request's id (ar_...)" };
        var denier = AsOption("Who denies");
        var denyReason = new Option<string?>("--reason") { Description = "Why (kept in the audit log)" };
        var deny = new Command("deny", "Deny a pending access request") { denyId, denier, denyReason };
        deny.SetAction((parse, ct) => RunAsync(parse, config, url, async (client, output) =>
        {
            var decided = await client.PostAsync<AccessRequestView>($"access/requests/{Escape(parse.GetValue(denyId))}/deny",
                new DecisionBody(Who(parse, denier), parse.GetValue(denyReason)), ct).ConfigureAwait(false);
            output.WriteLine($"Access request {decided.Id} denied.");
        }));

        var listAll = new Option<bool>("--all") { Description = "Every request and grant, not only pending requests and live grants" };
        var list = new Command("list", "Pending access requests and live grants") { listAll };
        list.SetAction((parse, ct) => RunAsync(parse, config, url, async (client, output) =>
        {
            bool all = parse.GetValue(listAll);
            var requests = await client.GetAsync<List<AccessRequestView>>(all ? "access/requests?all=true" : "access/requests", ct).ConfigureAwait(false);
            var grants = await client.GetAsync<List<GrantView>>(all ? "grants?all=true" : "grants", ct).ConfigureAwait(false);
            output.WriteLine(all ? "Access requests:" : "Pending access requests:");
            TextTable.Write(output, ["ID", "STATE", "IDENTITY", "CONNECTION", "ROLE", "FOR", "REQUESTED", "REASON"],
                requests.Select(r => new[] { r.Id, r.State, r.Identity, r.Connection, r.Role, r.Duration, TextTable.Time(r.RequestedAt), TextTable.Short(r.Reason, 50) }));
            output.WriteLine();
            output.WriteLine(all ? "Grants:" : "Live grants:");
            TextTable.Write(output, ["ID", "STATUS", "IDENTITY", "CONNECTION", "ROLE", "START", "END", "APPROVER"],
                grants.Select(g => new[] { g.Id, g.Status, g.Identity, g.Connection, g.Role, TextTable.Time(g.Start), TextTable.Time(g.End), g.Approver }));
        }));

        var revokeId = new Argument<string>("id") { Description = "The grant's id (gr_...)" };
        var revoker = AsOption("Who revokes");
        var revokeReason = new Option<string?>("--reason") { Description = "Why (kept in the audit log, and told to the ended sessions' log)" };
        var revoke = new Command("revoke", "Revoke a grant now; the identity's live sessions on that connection end at once") { revokeId, revoker, revokeReason };
        revoke.SetAction((parse, ct) => RunAsync(parse, config, url, async (client, output) =>
        {
            var revoked = await client.PostAsync<GrantView>($"grants/{Escape(parse.GetValue(revokeId))}/revoke",
                new RevokeBody(Who(parse, revoker), parse.GetValue(revokeReason)), ct).ConfigureAwait(false);
            output.WriteLine($"Grant {revoked.Id} ({revoked.Identity}, role {revoked.Role} on {revoked.Connection}) revoked; "
                             + $"{revoked.SessionsEnded ?? 0} live session(s) ended.");
        }));

        return new Command("access", "Just-in-time grants: request, approve, deny, list, revoke (through the running gateway's admin API)")
        {
            config, url, request, approve, deny, list, revoke,
        };
    }

    public static Command Approvals()
    {
        var config = ConfigOption();
        var url = UrlOption();

        var listAll = new Option<bool>("--all") { Description = "Decided, expired and withdrawn requests too" };
        var list = new Command("list", "Statements waiting for approval") { listAll };
        list.SetAction((parse, ct) => RunAsync(parse, config, url, async (client, output) =>
        {
            bool all = parse.GetValue(listAll);
            var approvals = await client.GetAsync<List<ApprovalView>>(all ? "approvals?all=true" : "approvals", ct).ConfigureAwait(false);
            TextTable.Write(output, ["ID", "STATE", "IDENTITY", "CONNECTION", "RULE", "REQUESTED", "EXPIRES", "STATEMENT"],
                approvals.Select(a => new[]
                {
                    a.Id, a.State, a.Identity, a.Connection, a.Rule, TextTable.Time(a.RequestedAt), TextTable.Time(a.ExpiresAt), TextTable.Short(a.Statement, 60),
                }));
            if (approvals.Any(a => a.State == "pending"))
            {
                output.WriteLine();
                output.WriteLine("Read a statement in full with: gatehouse approvals show ID");
            }
        }));

        var showId = new Argument<string>("id") { Description = "The approval request's id (ap_...)" };
        var show = new Command("show", "One request with its whole statement") { showId };
        show.SetAction((parse, ct) => RunAsync(parse, config, url, async (client, output) =>
        {
            var a = await client.GetAsync<ApprovalView>($"approvals/{Escape(parse.GetValue(showId))}", ct).ConfigureAwait(false);
            output.WriteLine($"id:         {a.Id}");
            output.WriteLine($"state:      {a.State}{(a.DecidedBy is null ? "" : " by " + a.DecidedBy)}{(a.Reason is null ? "" : ": " + a.Reason)}");
            output.WriteLine($"identity:   {a.Identity} (session {a.SessionId}, role {a.Role})");
            output.WriteLine($"connection: {a.Connection}");
            output.WriteLine($"rule:       {a.Rule}");
            output.WriteLine($"requested:  {TextTable.Time(a.RequestedAt)}, expires {TextTable.Time(a.ExpiresAt)}");
            output.WriteLine("statement:");
            output.WriteLine(a.Statement);
        }));

        var approveId = new Argument<string>("id") { Description = "The approval request's id (ap_...)" };
        var approver = AsOption("Who approves");
        var approveReason = new Option<string?>("--reason") { Description = "Why (kept in the audit log)" };
        var approve = new Command("approve", "Approve a held statement: it runs now, once") { approveId, approver, approveReason };
        approve.SetAction((parse, ct) => RunAsync(parse, config, url, async (client, output) =>
        {
            var decided = await client.PostAsync<ApprovalView>($"approvals/{Escape(parse.GetValue(approveId))}/approve",
                new DecisionBody(Who(parse, approver), parse.GetValue(approveReason)), ct).ConfigureAwait(false);
            output.WriteLine($"Approval request {decided.Id} approved: the statement of {decided.Identity} on {decided.Connection} runs now.");
        }));

        var denyId = new Argument<string>("id") { Description = "The approval request's id (ap_...)" };
        var denier = AsOption("Who denies");
        var denyReason = new Option<string?>("--reason") { Description = "Why (told to the client, kept in the audit log)" };
        var deny = new Command("deny", "Deny a held statement: it never runs, and the client is told") { denyId, denier, denyReason };
        deny.SetAction((parse, ct) => RunAsync(parse, config, url, async (client, output) =>
        {
            var decided = await client.PostAsync<ApprovalView>($"approvals/{Escape(parse.GetValue(denyId))}/deny",
                new DecisionBody(Who(parse, denier), parse.GetValue(denyReason)), ct).ConfigureAwait(false);
            output.WriteLine($"Approval request {decided.Id} denied.");
        }));

        return new Command("approvals", "Statements held for approval: list, show, approve, deny (through the running gateway's admin API)")
        {
            config, url, list, show, approve, deny,
        };
    }

    private static Option<FileInfo?> ConfigOption() => new("--config", "-c")
    {
        Description = "The gateway's config file: its admin section gives the admin API's address and token",
        Recursive = true,
    };

    private static Option<string?> UrlOption() => new("--url")
    {
        Description = $"The admin API's URL, such as http://127.0.0.1:7070 (or ${UrlVariable}); the token comes from ${TokenVariable}",
        Recursive = true,
    };

    private static Option<string?> AsOption(string description) => new("--as")
    {
        Description = $"{description}; default: $GATEHOUSE_USER, else $USER",
    };

    private static string Who(ParseResult parse, Option<string?> option)
    {
        string? who = parse.GetValue(option);
        if (string.IsNullOrWhiteSpace(who))
        {
            who = Environment.GetEnvironmentVariable("GATEHOUSE_USER");
        }

        if (string.IsNullOrWhiteSpace(who))
        {
            who = Environment.GetEnvironmentVariable("USER");
        }

        return string.IsNullOrWhiteSpace(who)
            ? throw new AdminCallException("say who you are with --as NAME (or set GATEHOUSE_USER)", AdminClient.Usage)
            : who;
    }

    private static string Escape(string? id) => Uri.EscapeDataString(id ?? "");

    /// <summary>Finds the gateway, runs <paramref name="work"/> against it, and turns failures into a message and an exit code.</summary>
    private static async Task<int> RunAsync(ParseResult parse, Option<FileInfo?> configOption, Option<string?> urlOption,
        Func<AdminClient, TextWriter, Task> work)
    {
        var output = parse.InvocationConfiguration.Output;
        var error = parse.InvocationConfiguration.Error;
        try
        {
            using var client = Connect(parse.GetValue(configOption), parse.GetValue(urlOption));
            await work(client, output).ConfigureAwait(false);
            return 0;
        }
        catch (AdminCallException ex)
        {
            await error.WriteLineAsync($"gatehouse: {ex.Message}").ConfigureAwait(false);
            return ex.ExitCode;
        }
        catch (ConfigException ex)
        {
            await ex.WriteToAsync(error).ConfigureAwait(false);
            return AdminClient.Usage;
        }
    }

    private static AdminClient Connect(FileInfo? configFile, string? url)
    {
        url ??= Environment.GetEnvironmentVariable(UrlVariable);
        if (configFile is not null && url is null)
        {
            var config = ConfigLoader.LoadFile(configFile.FullName);
            if (config.Admin is not { } admin)
            {
                throw new AdminCallException($"{configFile.Name} has no admin section: the gateway serves no admin API (see docs/configuration.md)", AdminClient.Usage);
            }

            if (admin.EndPoint.Port == 0)
            {
                throw new AdminCallException($"{configFile.Name} lets the admin API pick a free port (admin.address ends in :0); use --url", AdminClient.Usage);
            }

            return new AdminClient(admin.BaseUrl(), ResolveToken(admin), admin.Certificate);
        }

        if (url is null)
        {
            throw new AdminCallException($"say where the gateway is: --config FILE, or --url URL (or ${UrlVariable}) with ${TokenVariable}", AdminClient.Usage);
        }

        if (!Uri.TryCreate(url.EndsWith('/') ? url : url + "/", UriKind.Absolute, out var baseUrl) || baseUrl.Scheme is not ("http" or "https"))
        {
            throw new AdminCallException($"--url must be an http:// or https:// URL, not '{url}'", AdminClient.Usage);
        }

        string? envToken = Environment.GetEnvironmentVariable(TokenVariable);
        if (string.IsNullOrEmpty(envToken))
        {
            throw new AdminCallException($"set ${TokenVariable} to the gateway's admin token (or use --config)", AdminClient.Usage);
        }

        return new AdminClient(baseUrl, envToken);
    }

    private static string ResolveToken(AdminConfig admin)
    {
        try
        {
            return admin.Token.Resolve();
        }
        catch (InvalidOperationException ex)
        {
            throw new AdminCallException($"cannot read the admin token: {ex.Message}", AdminClient.Usage);
        }
    }
}
