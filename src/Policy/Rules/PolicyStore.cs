namespace Gatehouse.Policy.Rules;

/// <summary>
/// The live policy: an immutable <see cref="PolicySnapshot"/> swapped atomically on reload. Readers take
/// <see cref="Current"/> once per statement; a session re-resolves its <see cref="SessionPolicy"/> when the
/// snapshot's version changed, so a new policy applies from each session's next statement.
/// </summary>
public sealed class PolicyStore(PolicySnapshot initial)
{
    private PolicySnapshot _current = initial;

    public PolicySnapshot Current => Volatile.Read(ref _current);

    /// <summary>Swaps in a compiled policy. Its version must be greater than the current one's.</summary>
    public void Swap(PolicySnapshot next)
    {
        ArgumentNullException.ThrowIfNull(next);
        Volatile.Write(ref _current, next);
    }
}
