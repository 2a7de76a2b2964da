using System.Text;
using System.Text.Json;
using Gatehouse.Host.Cli;
using Gatehouse.Host.Review;
using Gatehouse.Tests.Support;

namespace Gatehouse.Tests.Review;

/// <summary>The review's CSV, JSON, HTML and table output, row by row, from the shared scenario.</summary>
public sealed class ReviewFormatTests : IAsyncLifetime
{
    private ReviewScenario _scenario = null!;
    private ReviewReport _report = null!;

    public async Task InitializeAsync()
    {
        _scenario = await ReviewScenario.CreateAsync();
        _report = await _scenario.BuildAsync();
    }

    public async Task DisposeAsync() => await _scenario.DisposeAsync();

    private static string E(int count) => new(',', count);

    [Fact]
    public void Csv_is_one_flat_table_with_a_record_column_and_exact_rows()
    {
        string csv = ReviewCommand.Render(_report, "csv");
        Assert.EndsWith("\r\n", csv, StringComparison.Ordinal);
        var lines = csv.Split("\r\n");
        Assert.Equal(
            "record,identity,id,connection,role,state,start,end,duration_s,requested_at,reason,decided_by,decided_at,decision_reason,revoked_by,revoked_at,"
            + "revoke_reason,request_id,grant_id,session_id,access,recording,integrity,problems,end_reason,end_detail,statements,classes,denied,held,masked,"
            + "tables,class,decision,rule,approver,ticket,result,text,parameters,value",
            lines[0]);
        Assert.Equal("summary,,sessions,,,,2030-01-02T09:00:00.000Z,2030-01-02T15:00:00.000Z" + E(33) + "4", lines[6]);

        var (g1, g2) = (_scenario.Grants[0], _scenario.Grants[1]);
        var (ar1, ar2, ar3) = (_scenario.Requests[0], _scenario.Requests[1], _scenario.Requests[2]);
        Assert.Contains(
            $"grant,alice,{g1},app,writer,expired,2030-01-02T09:05:00.000Z,2030-01-02T10:05:00.000Z,3600,2030-01-02T09:00:00.000Z,"
            + $"ticket 42: fix the invoice totals,bob,2030-01-02T09:05:00.000Z,looks right,,,,{ar1}" + E(23) + "1",
            lines);
        Assert.Contains(
            $"request,alice,{ar2},app,dba,denied,,,1800,2030-01-02T09:10:00.000Z,\"debug, locks\",bob,2030-01-02T09:10:00.000Z,use writer" + E(27),
            lines);
        // A reason that is a formula: defused with ' and quoted (it has commas and quotes).
        Assert.Contains(
            $"grant,carol,{g2},app,writer,revoked,2030-01-02T09:25:00.000Z,2030-01-02T11:25:00.000Z,7200,2030-01-02T09:20:00.000Z,"
            + "\"'=HYPERLINK(\"\"http://evil.example/\"\",\"\"migration\"\")\",dave,2030-01-02T09:25:00.000Z,,dave,2030-01-02T09:40:00.000Z,done early,"
            + ar3 + E(23) + "1",
            lines);
        Assert.Contains(
            $"session,alice,101,app,writer,,2030-01-02T09:10:00.000Z,2030-01-02T09:12:00.000Z,120" + E(9) + $",{g1},101,grant,"
            + "/var/lib/gatehouse/recordings/20300102T091000Z_101.ghrec.lz4,intact,,ClientTerminated,,4,ddl=1 read=1 write=2,1,1,3,public.t" + E(9),
            lines);
        Assert.Contains("session,bob,run_a/2,app,,,2030-01-02T13:00:00.000Z,2030-01-02T13:05:00.000Z,300" + E(9) + ",,run_a/2,standing,,missing,"
                        + "\"no recording: the state store records this session, but what it ran is unknown\",client_terminated,,0,?,0,0,0" + E(10),
            lines);
        Assert.Contains(
            $"statement,alice,,app,writer,,2030-01-02T09:11:00.000Z" + E(11) + $",{g1},101,,,intact" + E(6) + ",1,0,,write,allowed,hold-deletes,bob,ap_test01,"
            + "DELETE 1,DELETE FROM t WHERE id = $1,\"[\"\"1\"\"]\",B",
            lines);
        Assert.Equal(1, lines.Count(l => l.StartsWith("unused,", StringComparison.Ordinal)));
        Assert.Contains($"unused,alice,{_scenario.Grants[2]},app,writer,grant,2030-01-02T09:55:00.000Z,2030-01-02T10:55:00.000Z" + E(10) + $",{_scenario.Grants[2]}" + E(22),
            lines);
    }

    [Fact]
    public void Csv_fields_follow_rfc_4180_and_never_start_a_formula()
    {
        Assert.Equal("plain", ReviewCsvWriter.Field("plain"));
        Assert.Equal("\"a,b\"", ReviewCsvWriter.Field("a,b"));
        Assert.Equal("\"say \"\"hi\"\"\"", ReviewCsvWriter.Field("say \"hi\""));
        Assert.Equal("\"two\r\nlines\"", ReviewCsvWriter.Field("two\r\nlines"));
        Assert.Equal("'=1+1", ReviewCsvWriter.Field("=1+1"));
        Assert.Equal("'+1", ReviewCsvWriter.Field("+1"));
        Assert.Equal("'-2", ReviewCsvWriter.Field("-2"));
        Assert.Equal("'@SUM(A1)", ReviewCsvWriter.Field("@SUM(A1)"));
        Assert.Equal("'\tx", ReviewCsvWriter.Field("\tx"));
        Assert.Equal("\"'-- totals\nSELECT * FROM t\"", ReviewCsvWriter.Field("-- totals\nSELECT * FROM t"));
        Assert.Equal("", ReviewCsvWriter.Field(null));

        // Every row parses back to the header's width.
        var rows = Rfc4180.Parse(ReviewCommand.Render(_report, "csv"));
        Assert.All(rows, r => Assert.Equal(ReviewCsvWriter.Columns.Count, r.Length));
        Assert.Contains(rows, r => r[0] == "statement" && r[38] == "'-- totals\nSELECT * FROM t");
        Assert.Contains(rows, r => r[0] == "warning" && r[38].StartsWith("DAMAGED RECORDING: session 102", StringComparison.Ordinal));
    }

    [Fact]
    public void Json_has_the_documented_schema_in_a_fixed_order()
    {
        using var doc = JsonDocument.Parse(ReviewCommand.Render(_report, "json"));
        var root = doc.RootElement;
        Assert.Equal(["schema", "generated_at", "since", "until", "filters", "summary", "warnings", "identities"], Names(root));
        Assert.Equal("gatehouse.review/1", root.GetProperty("schema").GetString());
        Assert.Equal("2030-01-02T09:00:00.000Z", root.GetProperty("since").GetString());
        Assert.Equal(
            """{"identities":3,"grants":3,"revoked_grants":1,"denied_requests":1,"expired_requests":1,"sessions":4,"statements":6,"denied":2,"held":2,"masked":3,"approvals":2,"unused_grants":1,"unused_standing":0,"damaged_recordings":1,"unrecorded_sessions":1}""",
            JsonSerializer.Serialize(root.GetProperty("summary")));

        var alice = root.GetProperty("identities")[0];
        Assert.Equal(["identity", "grants", "requests", "sessions", "approvals", "standing", "unused"], Names(alice));
        var grant = alice.GetProperty("grants")[0];
        Assert.Equal(
            $$"""{"id":"{{_scenario.Grants[0]}}","connection":"app","role":"writer","status":"expired","request_id":"{{_scenario.Requests[0]}}","requested_at":"2030-01-02T09:00:00.000Z","reason":"ticket 42: fix the invoice totals","approved_by":"bob","approved_at":"2030-01-02T09:05:00.000Z","approval_reason":"looks right","start":"2030-01-02T09:05:00.000Z","end":"2030-01-02T10:05:00.000Z","duration_s":3600,"revoked_at":null,"revoked_by":null,"revoke_reason":null,"effective_end":"2030-01-02T10:05:00.000Z","used":true,"sessions":["101"]}""",
            JsonSerializer.Serialize(grant));

        var damaged = alice.GetProperty("sessions")[1];
        Assert.Equal(("102", "damaged", false), (damaged.GetProperty("id").GetString(), damaged.GetProperty("integrity").GetString(), damaged.GetProperty("trustworthy").GetBoolean()));
        Assert.Equal(ReviewScenario.Xss, damaged.GetProperty("statements")[0].GetProperty("text").GetString());

        var statement = alice.GetProperty("sessions")[0].GetProperty("statements")[3];
        Assert.Equal(
            """{"at":"2030-01-02T09:11:00.000Z","message":"B","class":"write","decision":"allowed","rule":"hold-deletes","held":true,"approver":"bob","ticket":"ap_test01","result":"DELETE 1","masked":0,"text":"DELETE FROM t WHERE id = $1","parameters":["1"]}""",
            JsonSerializer.Serialize(statement));
        Assert.Equal(
            """{"id":"ap_test01","connection":"app","role":"writer","rule":"hold-deletes","state":"approved","requested_at":"2030-01-02T09:11:00.000Z","decided_by":"bob","decided_at":"2030-01-02T09:11:30.000Z","reason":"ok once","session_id":"101","statement":"DELETE FROM t WHERE id = $1 -- [1]"}""",
            JsonSerializer.Serialize(alice.GetProperty("approvals")[0]));
        Assert.Equal(
            $$"""[{"kind":"grant","connection":"app","role":"writer","grant_id":"{{_scenario.Grants[2]}}","from":"2030-01-02T09:55:00.000Z","until":"2030-01-02T10:55:00.000Z"}]""",
            JsonSerializer.Serialize(alice.GetProperty("unused")));
        // JSON escapes markup: the raw payload never appears in the document's bytes.
        Assert.DoesNotContain("<script>", ReviewCommand.Render(_report, "json"), StringComparison.Ordinal);
    }

    [Fact]
    public void Html_escapes_every_text_and_allows_only_its_own_script_and_style()
    {
        string html = ReviewCommand.Render(_report, "html");
        Assert.Equal(1, Count(html, "<script>"));
        Assert.Equal(1, Count(html, "<style>"));
        Assert.DoesNotContain("<img", html, StringComparison.Ordinal);
        Assert.DoesNotContain("<b>", html, StringComparison.Ordinal);
        Assert.Contains("&lt;/script&gt;&lt;script&gt;document.body.setAttribute(&#39;data-pwned&#39;,&#39;1&#39;)&lt;/script&gt;", html, StringComparison.Ordinal);
        Assert.Contains("onerror=&quot;document.body", html, StringComparison.Ordinal);
        Assert.DoesNotContain("http://", html.Replace("http://evil.example/", "", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.DoesNotContain("https://", html, StringComparison.Ordinal);
        Assert.Matches("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src &#39;none&#39;; style-src &#39;sha256-[A-Za-z0-9+/=]+&#39;; "
                       + "script-src &#39;sha256-[A-Za-z0-9+/=]+&#39;;", html);
        Assert.Equal(4, Count(html, "<tr class=\"session-row"));
        Assert.Contains("<span class=\"badge damaged\">DAMAGED: not trustworthy</span>", html, StringComparison.Ordinal);
        Assert.Contains("<details class=\"session-detail damaged\" id=\"s-1\">", html, StringComparison.Ordinal);
        Assert.Contains("<a href=\"#s-0\" data-target=\"s-0\" class=\"mark\"><rect class=\"session denied\"", html, StringComparison.Ordinal);
        Assert.Contains("<rect class=\"grant unused\"", html, StringComparison.Ordinal);
        Assert.Equal(2, Count(html, "<tr class=\"standing-row\"><td>app</td><td>reader</td><td>yes</td></tr>"));
    }

    [Fact]
    public void The_table_shows_warnings_first_and_flags_damaged_recordings()
    {
        string table = ReviewCommand.Render(_report, "table");
        var lines = table.Split('\n');
        Assert.Equal("Access review 2030-01-02T09:00:00Z .. 2030-01-02T15:00:00Z (generated 2030-01-02T15:00:00Z)", lines[0]);
        Assert.StartsWith("WARNING: DAMAGED RECORDING: session 102 of alice", lines[2], StringComparison.Ordinal);
        Assert.Contains(lines, l => l.StartsWith("102 ", StringComparison.Ordinal) && l.EndsWith("DAMAGED: NOT TRUSTWORTHY", StringComparison.Ordinal));
        Assert.Contains("== alice ==", lines);
        Assert.Contains("Access never used:", lines);
        Assert.Equal(2, lines.Count(l => l == "Standing access (current policy):"));
        Assert.Equal(2, lines.Count(l => System.Text.RegularExpressions.Regex.IsMatch(l, "^app +reader +yes$")));
        // Control characters in texts cannot break the columns.
        Assert.DoesNotContain(lines, l => l.Contains('\r', StringComparison.Ordinal));
    }

    private static List<string> Names(JsonElement element) => [.. element.EnumerateObject().Select(p => p.Name)];

    private static int Count(string text, string part)
    {
        int count = 0;
        for (int i = text.IndexOf(part, StringComparison.Ordinal); i >= 0; i = text.IndexOf(part, i + part.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }
}
