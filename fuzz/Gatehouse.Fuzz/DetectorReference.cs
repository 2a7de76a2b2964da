using Gatehouse.Policy.Masking;
using static Gatehouse.Policy.Masking.ByteClass;

namespace Gatehouse.Fuzz;

/// <summary>
/// The built-in detectors without their vector prefilters, to compare the scanner with: every pass searched position
/// by position (the number pass tries each kind's check at every byte), no <see cref="Anchors.Present"/> deciding
/// which passes run, and the merge written out again. Whatever a prefilter skips that a check would have accepted
/// shows up as a difference.
/// </summary>
internal static class DetectorReference
{
    /// <summary>The matches of the built-in kinds of <paramref name="specs"/> (custom ones are not part of it), merged as documented on <see cref="ValueScanner"/>.</summary>
    public static List<DetectorMatch> Scan(ReadOnlySpan<byte> text, IReadOnlyList<DetectorSpec> specs)
    {
        // Tag and priority by kind: the first listing.
        var first = new Dictionary<DetectorKind, (int Tag, int Priority)>();
        for (int i = 0; i < specs.Count; i++)
        {
            if (specs[i].Kind != DetectorKind.Custom)
            {
                first.TryAdd(specs[i].Kind, (specs[i].Tag, i));
            }
        }

        var kinds = KindMask.None;
        foreach (var kind in first.Keys)
        {
            kinds |= (KindMask)(1 << (int)kind);
        }

        var passes = Enum.GetValues<BuiltInPass>();
        var pending = new Hit?[passes.Length];
        for (int p = 0; p < passes.Length; p++)
        {
            pending[p] = Find(passes[p], text, 0, kinds);
        }

        var result = new List<DetectorMatch>();
        while (true)
        {
            int best = -1;
            for (int p = 0; p < passes.Length; p++)
            {
                if (pending[p] is { } hit && (best < 0 || Before(hit, pending[best]!.Value)))
                {
                    best = p;
                }
            }

            if (best < 0)
            {
                return result;
            }

            var winner = pending[best]!.Value;
            result.Add(new DetectorMatch(winner.Start, winner.Length, first[winner.Kind].Tag));
            int end = winner.Start + winner.Length;
            for (int p = 0; p < passes.Length; p++)
            {
                if (pending[p] is { } hit && hit.Start < end)
                {
                    pending[p] = Find(passes[p], text, end, kinds);
                }
            }
        }

        bool Before(Hit a, Hit b) =>
            a.Start < b.Start || (a.Start == b.Start && (a.Length > b.Length || (a.Length == b.Length && first[a.Kind].Priority < first[b.Kind].Priority)));
    }

    /// <summary>The first match of one pass at or after <paramref name="from"/>, searched without prefilters.</summary>
    public static Hit? Find(BuiltInPass pass, ReadOnlySpan<byte> text, int from, KindMask kinds)
    {
        bool found;
        Hit hit;
        switch (pass)
        {
            case BuiltInPass.Numeric:
                return Numeric(text, from, kinds);
            case BuiltInPass.Email when (kinds & KindMask.Email) != 0:
                found = EmailAddress.FindNext(text, from, out hit);
                break;
            case BuiltInPass.AccessKeys when (kinds & (KindMask.AwsKey | KindMask.SecretToken)) != 0:
                found = AccessKeys.FindNext(text, from, (kinds & KindMask.AwsKey) != 0, (kinds & KindMask.SecretToken) != 0, out hit);
                break;
            case BuiltInPass.Underscore when (kinds & KindMask.SecretToken) != 0:
                found = ServiceTokens.FindNextUnderscore(text, from, out hit);
                break;
            case BuiltInPass.GitLab when (kinds & KindMask.SecretToken) != 0:
                found = ServiceTokens.FindNextGitLab(text, from, out hit);
                break;
            case BuiltInPass.Slack when (kinds & KindMask.SecretToken) != 0:
                found = ServiceTokens.FindNextSlack(text, from, out hit);
                break;
            case BuiltInPass.Jwt when (kinds & KindMask.Jwt) != 0:
                found = JsonWebToken.FindNext(text, from, out hit);
                break;
            case BuiltInPass.Pem when (kinds & KindMask.PemPrivateKey) != 0:
                found = PemPrivateKey.FindNext(text, from, out hit);
                break;
            default:
                return null;
        }

        return found ? hit : null;
    }

    /// <summary>The number pass, every kind's check at every position from <paramref name="from"/>: the leftmost, then longest, match.</summary>
    public static Hit? Numeric(ReadOnlySpan<byte> text, int from, KindMask kinds)
    {
        bool card = (kinds & KindMask.Card) != 0;
        bool ssn = (kinds & KindMask.Ssn) != 0;
        bool phone = (kinds & KindMask.Phone) != 0;
        bool iban = (kinds & KindMask.Iban) != 0;
        for (int i = from; i < text.Length; i++)
        {
            byte b = text[i];
            int best = 0;
            var kind = DetectorKind.Card;
            void Take(int length, DetectorKind k)
            {
                if (length > best)
                {
                    (best, kind) = (length, k);
                }
            }

            if (phone && b == '+' && !(card && i + 1 < text.Length && IsDigit(text[i + 1]) && CardNumber.Match(text, i + 1) > 0))
            {
                Take(PhoneNumber.MatchInternational(text, i), DetectorKind.Phone);
            }

            if (phone && (b == '(' || IsDigit(b)))
            {
                Take(PhoneNumber.MatchNorthAmerican(text, i), DetectorKind.Phone);
            }

            if (ssn && IsDigit(b))
            {
                Take(SocialSecurityNumber.Match(text, i), DetectorKind.Ssn);
            }

            if (card && IsDigit(b))
            {
                Take(CardNumber.Match(text, i), DetectorKind.Card);
            }

            if (iban && IsUpper(b))
            {
                Take(Iban.Match(text, i), DetectorKind.Iban);
            }

            if (best > 0)
            {
                return new Hit(i, best, kind);
            }
        }

        return null;
    }
}
