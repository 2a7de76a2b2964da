using System.Buffers;
using System.Runtime.CompilerServices;

namespace Gatehouse.Policy.Masking;

/// <summary>
/// Finds sensitive values in text: the compiled set of a policy's value detectors. Immutable and shared by every
/// session at once; <see cref="Scan"/> allocates nothing.
/// </summary>
/// <remarks>
/// <para>
/// Each built-in detector finds its candidates with a vectorised search for the bytes every match must start with or
/// contain (<c>@</c>, <c>eyJ</c>, <c>-----BEGIN </c>, the shape of the first bytes of a card or phone number, ...)
/// and checks only there, so text without matches is skimmed rather than read byte by byte. Detectors that share a
/// search share a pass (card, SSN, phone and IBAN all start from digits and capitals); only the passes of enabled
/// kinds run, and none runs on a value shorter than its shortest match. A value of up to 256 bytes (a cell) is first
/// swept once for the candidates of every pass (<see cref="Anchors.Present"/>), and only the passes with one run.
/// </para>
/// <para>
/// Matches from all detectors are merged as a scan from left to right would find them: the match that starts first
/// wins, then the longer, then the detector listed first; the next match is searched from the end of the last, so
/// the result is ordered and never overlaps. A detector asked to search again from there finds what it would find
/// on that remainder (word boundaries still look at the bytes before it; an e-mail address whose local part the
/// previous match covered keeps its remaining bytes).
/// </para>
/// <para>
/// Hot methods are compiled fully optimized at once (<see cref="MethodImplOptions.AggressiveOptimization"/>): with
/// dynamic PGO the tiered code of the vector sweeps measured two to three times slower.
/// </para>
/// </remarks>
public sealed class ValueScanner
{
    /// <summary>Candidates kept on the stack; more detectors than this rent an array.</summary>
    private const int StackCandidates = 16;

    /// <summary>Values up to this many bytes are swept once for all passes' candidates (<see cref="Anchors.Present"/>).</summary>
    private const int PrefilterLength = 256;

    /// <summary>Values up to this many bytes are transcoded for custom patterns on the stack; longer ones rent a buffer.</summary>
    private const int StackChars = 512;

    private static readonly ValueScanner EmptyScanner = new([], [], KindMask.None, new int[KindCount], new int[KindCount], []);

    private const int KindCount = (int)DetectorKind.Custom;

    private readonly BuiltInPass[] _passes;
    private readonly uint _passSet;
    private readonly int[] _passMinLength;
    private readonly KindMask _kinds;
    private readonly int[] _tags;
    private readonly int[] _priorities;
    private readonly CustomPattern[] _custom;

    private ValueScanner(BuiltInPass[] passes, int[] passMinLength, KindMask kinds, int[] tags, int[] priorities, CustomPattern[] custom)
    {
        _passes = passes;
        foreach (var pass in passes)
        {
            _passSet |= Anchors.Bit(pass);
        }

        _passMinLength = passMinLength;
        _kinds = kinds;
        _tags = tags;
        _priorities = priorities;
        _custom = custom;
    }

    /// <summary>A scanner without detectors: <see cref="Scan"/> finds nothing.</summary>
    public static ValueScanner Empty => EmptyScanner;

    /// <summary>True when there are no detectors.</summary>
    public bool IsEmpty => _passes.Length == 0 && _custom.Length == 0;

    /// <summary>
    /// Compiles detectors. A kind listed more than once runs once, and its matches carry the first listing's tag;
    /// every custom pattern runs on its own.
    /// </summary>
    /// <exception cref="ArgumentException">A custom detector without a pattern or with one that cannot be used (the message says why), a pattern on a built-in kind, or an unknown kind.</exception>
    public static ValueScanner Create(IEnumerable<DetectorSpec> specs)
    {
        ArgumentNullException.ThrowIfNull(specs);
        var kinds = KindMask.None;
        int[] tags = new int[KindCount];
        int[] priorities = new int[KindCount];
        var custom = new List<CustomPattern>();
        int position = 0;
        foreach (var spec in specs)
        {
            ArgumentNullException.ThrowIfNull(spec, nameof(specs));
            if (spec.Kind == DetectorKind.Custom)
            {
                if (spec.Pattern is null)
                {
                    throw new ArgumentException("a custom detector needs a pattern", nameof(specs));
                }

                custom.Add(CustomPattern.Create(spec.Pattern, spec.Tag, position));
            }
            else if ((uint)spec.Kind < KindCount)
            {
                if (spec.Pattern is not null)
                {
                    throw new ArgumentException($"the {DetectorNames.NameOf(spec.Kind)} detector takes no pattern", nameof(specs));
                }

                var bit = (KindMask)(1 << (int)spec.Kind);
                if ((kinds & bit) == 0)
                {
                    kinds |= bit;
                    tags[(int)spec.Kind] = spec.Tag;
                    priorities[(int)spec.Kind] = position;
                }
            }
            else
            {
                throw new ArgumentException($"unknown detector kind {(int)spec.Kind}", nameof(specs));
            }

            position++;
        }

        if (kinds == KindMask.None && custom.Count == 0)
        {
            return Empty;
        }

        var passes = new List<BuiltInPass>();
        var minLengths = new List<int>();
        foreach (var pass in Enum.GetValues<BuiltInPass>())
        {
            int min = MinLength(pass, kinds);
            if (min > 0)
            {
                passes.Add(pass);
                minLengths.Add(min);
            }
        }

        return new ValueScanner([.. passes], [.. minLengths], kinds, tags, priorities, [.. custom]);
    }

    /// <summary>
    /// Null when <paramref name="pattern"/> can be a custom detector, else the reason in one line (a syntax error,
    /// or a construct the non-backtracking engine does not support, such as a backreference or a lookaround).
    /// </summary>
    public static string? ValidatePattern(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        return CustomPattern.TryCompile(pattern, out string? error) is null ? error : null;
    }

    /// <summary>
    /// Finds the sensitive ranges of a UTF-8 value: ordered by start and not overlapping (where two would overlap, the
    /// one that starts first wins, then the longer).
    /// </summary>
    /// <param name="utf8">The value. Ill-formed UTF-8 is scanned as it is (custom patterns see U+FFFD).</param>
    /// <param name="matches">Receives the matches; byte offsets into <paramref name="utf8"/>.</param>
    /// <returns>The number of matches, or -1 when there are more than <paramref name="matches"/> can hold (mask the whole value).</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public int Scan(ReadOnlySpan<byte> utf8, Span<DetectorMatch> matches)
    {
        // In a short value the passes' own searches cost more in calls than in bytes: one sweep tells which have
        // a candidate at all (most often none).
        ulong numeric = 0;
        uint present = _passSet != 0 && utf8.Length <= PrefilterLength ? Anchors.Present(utf8, _passSet, _kinds, out numeric) : _passSet;
        if (_custom.Length == 0)
        {
            // Most values have no match: the built-in passes look for a first one before the merge is set up.
            for (int p = 0; p < _passes.Length; p++)
            {
                if ((present & Anchors.Bit(_passes[p])) != 0 && FindBuiltIn(p, utf8, 0, numeric, out Hit hit))
                {
                    return Merge(utf8, matches, present, numeric, p, hit);
                }
            }

            return 0;
        }

        return utf8.IsEmpty ? 0 : Merge(utf8, matches, present, numeric, 0, default);
    }

    /// <summary>
    /// The merge of all detectors' matches. Built-in passes not in <paramref name="present"/>, and those before
    /// <paramref name="first"/>, are known to have no match; when there are no custom patterns, <paramref name="hit"/>
    /// is the first match of pass <paramref name="first"/>. <paramref name="numeric"/> holds a short value's number
    /// candidates (<see cref="Anchors.Present"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private int Merge(ReadOnlySpan<byte> utf8, Span<DetectorMatch> matches, uint present, ulong numeric, int first, Hit hit)
    {
        int builtIn = _passes.Length;
        int total = builtIn + _custom.Length;
        Candidate[]? rentedCandidates = null;
        char[]? rentedChars = null;
        // Sized to the need (stack memory is cleared, so a fixed 1 KiB would cost more than a short value's scan).
        Span<Candidate> pending = total <= StackCandidates
            ? stackalloc Candidate[total]
            : (rentedCandidates = ArrayPool<Candidate>.Shared.Rent(total));
        Span<char> buffer = _custom.Length == 0
            ? default
            : utf8.Length <= StackChars ? stackalloc char[utf8.Length] : (rentedChars = ArrayPool<char>.Shared.Rent(utf8.Length));
        var chars = _custom.Length == 0 ? default : new Utf16Text(utf8, buffer);
        try
        {
            for (int p = 0; p < total; p++)
            {
                pending[p] = p < first || (p < builtIn && (present & Anchors.Bit(_passes[p])) == 0) ? Candidate.None
                    : p == first && _custom.Length == 0 ? ToCandidate(hit)
                    : Next(p, utf8, 0, numeric, ref chars);
            }

            int count = 0;
            while (true)
            {
                int best = -1;
                for (int p = 0; p < total; p++)
                {
                    if (pending[p].Start >= 0 && (best < 0 || pending[p].IsBefore(pending[best])))
                    {
                        best = p;
                    }
                }

                if (best < 0)
                {
                    return count;
                }

                if (count == matches.Length)
                {
                    return -1;
                }

                var winner = pending[best];
                matches[count++] = new DetectorMatch(winner.Start, winner.Length, winner.Tag);
                int end = winner.Start + winner.Length;
                for (int p = 0; p < total; p++)
                {
                    if (pending[p].Start >= 0 && pending[p].Start < end)
                    {
                        pending[p] = Next(p, utf8, end, numeric, ref chars);
                    }
                }
            }
        }
        finally
        {
            if (rentedCandidates is not null)
            {
                ArrayPool<Candidate>.Shared.Return(rentedCandidates);
            }

            if (rentedChars is not null)
            {
                ArrayPool<char>.Shared.Return(rentedChars);
            }
        }
    }

    /// <summary>The next match of detector <paramref name="p"/> (built-in passes first, then custom patterns) at or after <paramref name="from"/>.</summary>
    private Candidate Next(int p, ReadOnlySpan<byte> text, int from, ulong numeric, ref Utf16Text chars)
    {
        if (p < _passes.Length)
        {
            return FindBuiltIn(p, text, from, numeric, out Hit hit) ? ToCandidate(hit) : Candidate.None;
        }

        var custom = _custom[p - _passes.Length];
        return custom.FindNext(ref chars, from, out int start, out int length)
            ? new Candidate(start, length, custom.Tag, custom.Priority)
            : Candidate.None;
    }

    private Candidate ToCandidate(Hit hit) => new(hit.Start, hit.Length, _tags[(int)hit.Kind], _priorities[(int)hit.Kind]);

    /// <summary>The first match of built-in pass <paramref name="p"/> at or after <paramref name="from"/>.</summary>
    private bool FindBuiltIn(int p, ReadOnlySpan<byte> text, int from, ulong numeric, out Hit hit)
    {
        if (text.Length - from < _passMinLength[p])
        {
            hit = default;
            return false;
        }

        return _passes[p] switch
        {
            BuiltInPass.Numeric => NumericPass.FindNext(text, from, _kinds, numeric, out hit),
            BuiltInPass.Email => EmailAddress.FindNext(text, from, out hit),
            BuiltInPass.AccessKeys => AccessKeys.FindNext(text, from, (_kinds & KindMask.AwsKey) != 0, (_kinds & KindMask.SecretToken) != 0, out hit),
            BuiltInPass.Underscore => ServiceTokens.FindNextUnderscore(text, from, out hit),
            BuiltInPass.GitLab => ServiceTokens.FindNextGitLab(text, from, out hit),
            BuiltInPass.Slack => ServiceTokens.FindNextSlack(text, from, out hit),
            BuiltInPass.Jwt => JsonWebToken.FindNext(text, from, out hit),
            _ => PemPrivateKey.FindNext(text, from, out hit),
        };
    }

    /// <summary>The shortest match of a pass with the enabled kinds, or 0 when the pass has nothing to look for.</summary>
    private static int MinLength(BuiltInPass pass, KindMask kinds) => pass switch
    {
        BuiltInPass.Numeric when (kinds & KindMask.Phone) != 0 => NumericPass.MinLength,
        BuiltInPass.Numeric when (kinds & (KindMask.Ssn | KindMask.Card)) != 0 => SocialSecurityNumber.Length,
        BuiltInPass.Numeric when (kinds & KindMask.Iban) != 0 => Iban.MinLength,
        BuiltInPass.Email when (kinds & KindMask.Email) != 0 => EmailAddress.MinLength,
        BuiltInPass.AccessKeys when (kinds & KindMask.AwsKey) != 0 => AccessKeys.AwsKeyLength,
        BuiltInPass.AccessKeys when (kinds & KindMask.SecretToken) != 0 => AccessKeys.GoogleKeyMinLength,
        BuiltInPass.Underscore when (kinds & KindMask.SecretToken) != 0 => ServiceTokens.UnderscoreMinLength,
        BuiltInPass.GitLab when (kinds & KindMask.SecretToken) != 0 => ServiceTokens.GitLabMinLength,
        BuiltInPass.Slack when (kinds & KindMask.SecretToken) != 0 => ServiceTokens.SlackMinLength,
        BuiltInPass.Jwt when (kinds & KindMask.Jwt) != 0 => JsonWebToken.MinLength,
        BuiltInPass.Pem when (kinds & KindMask.PemPrivateKey) != 0 => PemPrivateKey.MinLength,
        _ => 0,
    };

    /// <summary>A detector's next match; <see cref="Start"/> -1 when it has no more.</summary>
    private readonly struct Candidate(int start, int length, int tag, int priority)
    {
        public static Candidate None => new(-1, 0, 0, 0);

        public readonly int Start = start;
        public readonly int Length = length;
        public readonly int Tag = tag;
        public readonly int Priority = priority;

        /// <summary>Starts first; on the same start, is longer; on the same range, was listed first.</summary>
        public bool IsBefore(Candidate other) =>
            Start < other.Start || (Start == other.Start && (Length > other.Length || (Length == other.Length && Priority < other.Priority)));
    }
}
