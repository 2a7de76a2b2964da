using Gatehouse.Fuzz;

namespace Gatehouse.Tests.Fuzz;

/// <summary>
/// Regression inputs: minimal conversations on which the PgPolicyGate fuzz target (fuzz/Gatehouse.Fuzz/PgGateFuzz.cs)
/// found bugs in <c>PgPolicyGate</c> and the relay state, now fixed. The target's oracles throw if one comes back.
/// Input: a control byte, then ops: 0x_0 Parse(statement, text byte), 0x_1 Bind, 0x_3 Execute, 0x05 Sync,
/// 0x07 Query(text byte), 0x0F the server answers everything so far (see <c>PgGateConversation</c>). Texts by index:
/// 0 "SELECT 1", 6 <c>SELECT 'a\'; DROP TABLE t; --'</c>, 7 <c>SELECT 'a\''; DROP TABLE t; --'</c>,
/// 8 "SET standard_conforming_strings = off", 9 "... = on". The trace of each: <c>Gatehouse.Fuzz trace &lt;file&gt;</c>.
/// </summary>
public sealed class PgPolicyGateFindingsTests
{
    private const string Finding1 = "PgPolicyGate finding 1 (safety): standard_conforming_strings changed by a SET run through Parse/Bind/Execute "
        + "without Sync is only reported at the next ReadyForQuery, but the gate trusts the old value once nothing is in flight";

    private const string Finding2 = "PgPolicyGate finding 2: after an extended-query error, messages the client sends before its Sync are skipped "
        + "by the server, but the gate expects answers for those the error's response did not find in flight";

    private const string Finding3 = "PgPolicyGate finding 3: a Query or FunctionCall the server skips after an extended-query error gets no "
        + "ReadyForQuery, but PgRelayState.PendingSyncs counted it and never forgets it (a drain then waits for its timeout)";

    /// <summary>
    /// SAFETY. <c>SET standard_conforming_strings = off</c> through Parse, Bind, Execute; the server answers
    /// ParseComplete, BindComplete, CommandComplete and (no Sync yet) no ParameterStatus. The client then sends the
    /// Query <c>SELECT 'a\''; DROP TABLE t; --'</c>: the gate lexes it with the setting on (one string, a read,
    /// allowed) and forwards it; the server, with it off, runs <c>SELECT 'a\''</c> and then <c>DROP TABLE t</c>.
    /// </summary>
    [Fact]
    public void A_SET_of_standard_conforming_strings_before_Sync_keeps_the_setting_uncertain_off() =>
        FuzzTargets.PgPolicyGate([0x00, 0x00, 8, 0x01, 0x03, 0x0F, 0x07, 7]);

    /// <summary>SAFETY. The same the other way: the server starts with the setting off, the SET turns it on.</summary>
    [Fact]
    public void A_SET_of_standard_conforming_strings_before_Sync_keeps_the_setting_uncertain_on() =>
        FuzzTargets.PgPolicyGate([0x20, 0x00, 9, 0x01, 0x03, 0x0F, 0x07, 6]);

    /// <summary>
    /// Execute of a portal that does not exist fails (34000) and the gate sees the error with nothing else in
    /// flight. The client, which has not seen the error yet, sends Execute and Sync: the server skips the Execute
    /// and answers the Sync, but the gate has the Execute in front of the Sync and ends the session
    /// (ServerProtocolViolation, "a 'Z' response does not answer the requests in flight"). Any message sent there
    /// does it: Parse, Bind, Describe, Close, Execute, Query, FunctionCall, denied or not.
    /// </summary>
    [Fact]
    public void Messages_sent_after_an_error_is_relayed_and_before_Sync_are_skipped_by_the_server() =>
        FuzzTargets.PgPolicyGate([0x00, 0x03, 0x0F, 0x03, 0x05]);

    /// <summary>
    /// The same with a Query in the gap: its ReadyForQuery is taken as the Query's (the server skipped it), so the
    /// gate stays one request behind. The next refused Bind's substitute error then reaches the client as the
    /// server wrote it (SQLSTATE 26000, naming the secret substitute statement) instead of the policy error; later
    /// real errors are replaced by policy errors that belong to other messages.
    /// </summary>
    [Fact]
    public void A_Query_skipped_after_an_error_does_not_shift_the_requests_in_flight() =>
        FuzzTargets.PgPolicyGate([0x00, 0x03, 0x0F, 0x07, 0, 0x05, 0x0F, 0x41, 0x05, 0x0F]);

    /// <summary>
    /// Execute of a missing portal, Query "SELECT 1" and Sync, sent together: the server fails the Execute, skips
    /// the Query and answers the Sync. The gate is right (it drops the Query from its requests when the error
    /// comes), but the relay's count of requests awaiting ReadyForQuery stays at 1 for good, also without a
    /// policy: <c>FrontendRelayHandler</c> counts the Query when forwarding it and only a ReadyForQuery uncounts it.
    /// A draining gateway then never sees the session idle and cuts it at drain_timeout (ShutdownAborted).
    /// </summary>
    [Fact]
    public void A_Query_the_server_skips_is_not_left_pending() =>
        FuzzTargets.PgPolicyGate([0x00, 0x03, 0x07, 0, 0x05, 0x0F]);

    private const string Finding4 = "PgPolicyGate finding 4 (fixed): a held statement that leaves without approval (the policy changed, or the Parse "
        + "in flight for its Bind came back) leaves its approval request pending and kept as PgPolicyGate._held; the next statement that "
        + "requires approval is then decided by that old request (no new request), and runs once an approver approves the old one";

    /// <summary>
    /// Approval inputs (control bit 6: the policy <c>gate-approval</c>, where text 3 <c>UPDATE t SET a = 1 WHERE b = 2</c>
    /// requires approval; op 0x09 swaps it with the strict read-only policy, 0x0B approves the held or else the last
    /// request as "bob", 0x0E wakes the client direction). Query UPDATE is held (request A); the policy is reloaded
    /// to strict and the client direction woken: the gate re-decides the frame (now denied) and refuses it with
    /// 42501, but never withdraws A, which stays pending in the broker, and <c>_held</c> still points at it.
    /// </summary>
    [Fact]
    public void A_held_Query_refused_after_a_reload_leaves_its_request_pending() =>
        FuzzTargets.PgPolicyGate([0x40, 0x07, 3, 0x09, 0x0E]);

    /// <summary>
    /// The consequence: after the reload back, a new Query UPDATE submits no request (Hold reuses <c>_held</c>, A);
    /// an approver approves A (the refused statement, still listed as pending), and the new UPDATE is forwarded and
    /// run on that approval (SAFETY: nobody approved it). The target reports the root (STALE-APPROVAL, at the wake);
    /// past that check the model server's safety oracle fires at the last op (the UPDATE run without approval).
    /// </summary>
    [Fact]
    public void A_stale_approval_request_lets_the_next_statement_run() =>
        FuzzTargets.PgPolicyGate([0x40, 0x07, 3, 0x09, 0x0E, 0x09, 0x0B, 0x07, 3, 0x0F]);

    /// <summary>
    /// Without a reload: Parse("", UPDATE), Sync, answered; Parse("", "SELECT 1") and Bind("", "") pipelined. The
    /// Bind is held (the strictest of the texts the name may hold: the UPDATE confirmed, the SELECT in flight).
    /// The server answers the Parse (ParseComplete), the client direction is woken, and the Bind, now decided on
    /// "SELECT 1" alone, is forwarded without approval, rightly, but its request stays pending and held.
    /// </summary>
    [Fact]
    public void A_held_Bind_allowed_after_its_Parse_came_back_leaves_its_request_pending() =>
        FuzzTargets.PgPolicyGate([0x40, 0x00, 3, 0x05, 0x0F, 0x00, 0, 0x01, 0x0A, 0x0E]);
}
