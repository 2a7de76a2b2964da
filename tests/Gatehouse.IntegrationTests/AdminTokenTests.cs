using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Gatehouse.Host.Admin;
using Gatehouse.IntegrationTests.Infrastructure;
using Gatehouse.Policy.Approvals;
using Gatehouse.TestSupport;

namespace Gatehouse.IntegrationTests;

/// <summary>
/// The admin API authenticated by the identity provider instead of the shared admin token: a person presents their
/// own access token and acts as themselves, so who approved is authenticated, not just stated.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class AdminTokenTests(PostgresFixture fixture) : IAsyncLifetime, IDisposable
{
    private const string Issuer = "https://idp.gatehouse.test/";

    private readonly TestIssuer _idp = new(Issuer);
    private GatewayHost _gateway = null!;
    private string _jwksFile = null!;
    private string _ledger = null!;

    private PostgresServer Server => fixture.Server;

    public async Task InitializeAsync()
    {
        _jwksFile = Path.Combine(Path.GetTempPath(), $"gatehouse-jwks-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(_jwksFile, _idp.Jwks);
        _ledger = Direct.UniqueName("ledger");
        await Direct.ExecuteAsync(Server, $"CREATE TABLE {_ledger} (id int); INSERT INTO {_ledger} VALUES (1);");
        _gateway = GatewayHost.Start(Server, new GatewaySettings
        {
            Policy = ApprovalTests.ApprovalPolicy,
            IdentityProviders = $"""
                  - name: test-idp
                    issuer: {Issuer}
                    audience: {_idp.Audience}
                    jwks_file: {_jwksFile}
                """,
            Admin = "{ address: 127.0.0.1:0, token: { value: \"admin-token-0123456789abcdef\" }, identities: [bob], groups: [approvers] }",
        });
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        File.Delete(_jwksFile);
        await Direct.ExecuteAsync(Server, $"DROP TABLE IF EXISTS {_ledger}");
    }

    public void Dispose() => _idp.Dispose();

    private HttpClient Http(string token)
    {
        var http = new HttpClient { BaseAddress = _gateway.Server.AdminUrl };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return http;
    }

    private static StringContent Json(object body) => new(JsonSerializer.Serialize(body, AdminJson.Options), Encoding.UTF8, "application/json");

    [Fact]
    public async Task A_person_decides_with_their_own_token_and_is_recorded_as_themselves_whatever_the_body_says()
    {
        var psql = Clients.PsqlAsync(_gateway.Port, _gateway.AliceSecret, $"DELETE FROM {_ledger} WHERE id = 1;");
        string id = await PendingAsync();

        // alice is not an admin: her token is refused outright.
        using (var alice = Http(_idp.Mint("alice")))
        using (var refused = await alice.PostAsync($"approvals/{id}/approve", Json(new { approver = "bob" })))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        // bob's token approves; the body's claim to be carol is ignored: the token says who decides.
        using (var bob = Http(_idp.Mint("bob")))
        using (var approved = await bob.PostAsync($"approvals/{id}/approve", Json(new { approver = "carol", reason = "ok" })))
        {
            Assert.Equal(HttpStatusCode.OK, approved.StatusCode);
        }

        Assert.Equal("DELETE 1\n", (await psql).EnsureSuccess("psql").Stdout);
        var record = _gateway.Server.Approvals.Find(id)!;
        Assert.Equal((ApprovalState.Approved, "bob"), (record.State, record.DecidedBy));
    }

    [Fact]
    public async Task A_member_of_an_admin_group_may_decide_but_not_their_own_statement_and_bad_tokens_are_refused()
    {
        var psql = Clients.PsqlAsync(_gateway.Port, _gateway.AliceSecret, $"DELETE FROM {_ledger} WHERE id = 1;");
        string id = await PendingAsync();

        string aliceInGroup = _idp.Mint("alice", d => d.Claims["groups"] = new[] { "approvers" });
        using (var self = Http(aliceInGroup))
        using (var refused = await self.PostAsync($"approvals/{id}/approve", Json(new { approver = "dave" })))
        {
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        }

        foreach (var bad in new[] { _idp.MintUnsigned("bob"), _idp.MintKeyConfusion("bob"), _idp.Mint("bob", d => d.Audience = "elsewhere") })
        {
            using var http = Http(bad);
            using var response = await http.PostAsync($"approvals/{id}/deny", Json(new { approver = "bob" }));
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }

        string erin = _idp.Mint("erin", d => d.Claims["groups"] = new[] { "approvers" });
        using (var approver = Http(erin))
        using (var denied = await approver.PostAsync($"approvals/{id}/deny", Json(new { reason = "no" })))
        {
            Assert.Equal(HttpStatusCode.OK, denied.StatusCode);
        }

        Assert.Contains("erin denied the statement", (await psql).Stderr, StringComparison.Ordinal);
        Assert.Equal(1L, await Direct.ScalarAsync<long>(Server, $"SELECT count(*) FROM {_ledger}"));
    }

    private async Task<string> PendingAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (DateTime.UtcNow < deadline)
        {
            if (_gateway.Server.Approvals.List().FirstOrDefault(r => r.Request.Statement.Contains(_ledger, StringComparison.Ordinal)) is { } record)
            {
                return record.Request.Id;
            }

            await Task.Delay(50);
        }

        throw new TimeoutException("no approval request appeared");
    }
}
