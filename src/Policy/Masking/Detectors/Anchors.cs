using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Gatehouse.Policy.Masking;

/// <summary>
/// Where a built-in detector could match, for many detectors at once: up to 64 bytes at a time are compared in
/// vector registers and turned into one bit mask per detector pass, whose set bits are the only places its checks
/// can succeed (the first bytes of a card, SSN or phone number, an <c>@</c>, the <c>yJ</c> of <c>eyJ</c>, dashes 0,
/// 1 and 4 of <c>-----BEGIN</c>, ...). The masks are necessary conditions, not matches: the passes check every
/// candidate. A condition on the byte k places ahead is the mask shifted right by k, so a window of a longer text
/// decides its first 64 - <see cref="Lookahead"/> positions and the next window starts there.
/// </summary>
/// <remarks>
/// Two uses: <see cref="Present"/> tells which passes have any candidate in a short value, so the scanner runs only
/// those (in a 50-byte cell, one block of compares replaces eight searches); <see cref="NextNumeric"/> moves the
/// number pass from candidate to candidate, so digits in dates, amounts and identifiers are not stopped at one run at
/// a time.
/// </remarks>
internal static class Anchors
{
    /// <summary>The furthest byte a mask looks ahead: the eleventh byte of a number.</summary>
    public const int Lookahead = 10;

    private const int Window = 64;

    private const int Stride = Window - Lookahead;

    /// <summary>The longest text whose number candidates <see cref="Present"/> returns.</summary>
    public const int CellLength = Window;

    /// <summary>The bit of a pass in a set of passes.</summary>
    public static uint Bit(BuiltInPass pass) => 1u << (int)pass;

    /// <summary>The passes of <paramref name="passes"/> (a bit per <see cref="BuiltInPass"/>) with at least one candidate in <paramref name="text"/>.</summary>
    /// <param name="text">The value.</param>
    /// <param name="passes">The passes to look for.</param>
    /// <param name="kinds">The kinds the passes look for.</param>
    /// <param name="numeric">
    /// For a text of up to 64 bytes, the number pass's candidates (as <see cref="NextNumeric"/> would find them, a bit
    /// per byte); 0 for a longer text.
    /// </param>
    public static uint Present(ReadOnlySpan<byte> text, uint passes, KindMask kinds, out ulong numeric) =>
        Vector256.IsHardwareAccelerated ? Present<ByteBlock256>(text, passes, kinds, out numeric) : Present<ByteBlock128>(text, passes, kinds, out numeric);

    /// <summary>The first position at or after <paramref name="from"/> where the number pass has a candidate, or -1.</summary>
    public static int NextNumeric(ReadOnlySpan<byte> text, int from, KindMask kinds) =>
        Vector256.IsHardwareAccelerated ? NextNumeric<ByteBlock256>(text, from, kinds) : NextNumeric<ByteBlock128>(text, from, kinds);

    /// <summary><see cref="Present(ReadOnlySpan{byte}, uint, KindMask, out ulong)"/> with one vector width (the fuzz target compares the two).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static uint Present<TBlock>(ReadOnlySpan<byte> text, uint passes, KindMask kinds, out ulong numeric)
        where TBlock : struct, IByteBlock<TBlock>
    {
        numeric = 0;
        if (text.Length <= Window)
        {
            // A cell: one block, straight through; the number pass's candidates come along.
            return text.IsEmpty ? 0 : Found(TBlock.Load(text), passes, kinds, ulong.MaxValue, ref numeric);
        }

        uint found = 0;
        ulong unused = 0;
        for (int w = 0; found != passes; w += Stride)
        {
            int remaining = text.Length - w;
            if (remaining > Window)
            {
                found |= Found(TBlock.Load(text.Slice(w, Window)), passes & ~found, kinds, (1UL << Stride) - 1, ref unused);
            }
            else
            {
                // The last window ends at the end of the text; it overlaps the one before.
                int start = text.Length - Window;
                found |= Found(TBlock.Load(text[start..]), passes & ~found, kinds, ulong.MaxValue << (w - start), ref unused);
                break;
            }
        }

        return found;
    }

    /// <summary>The passes with a candidate at a <paramref name="valid"/> position of the block.</summary>
    /// <remarks>
    /// Most passes wait for a byte that ordinary text rarely holds (<c>@</c>, <c>_</c>, <c>x</c> of <c>xox</c>,
    /// <c>J</c> of <c>eyJ</c>, <c>z</c> of <c>AIza</c>, <c>+</c> and <c>(</c> of phone numbers): one combined compare rules
    /// them all out at once, and only a block that holds one of them pays for the separate masks.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static uint Found<TBlock>(in TBlock block, uint wanted, KindMask kinds, ulong valid, ref ulong numeric)
        where TBlock : struct, IByteBlock<TBlock>
    {
        // The whole block, not only its valid positions: a pass's mask may need the rare byte a few places ahead.
        bool rare = block.EqualAny("@_xJz+("u8) != 0;
        uint found = 0;
        ulong dash = (wanted & (Bit(BuiltInPass.Numeric) | Bit(BuiltInPass.GitLab) | Bit(BuiltInPass.Pem))) != 0 ? block.Equal((byte)'-') : 0;
        if (Wants(wanted, BuiltInPass.Numeric) && (numeric = NumericMask(block, dash, kinds, rare) & valid) != 0)
        {
            found |= Bit(BuiltInPass.Numeric);
        }

        if (Wants(wanted, BuiltInPass.AccessKeys) && (AccessKeyMask(block, rare ? kinds : kinds & ~KindMask.SecretToken) & valid) != 0)
        {
            found |= Bit(BuiltInPass.AccessKeys);
        }

        if (Wants(wanted, BuiltInPass.GitLab) && (block.Equal((byte)'g') & (dash >> 5) & valid) != 0)
        {
            found |= Bit(BuiltInPass.GitLab);
        }

        if (Wants(wanted, BuiltInPass.Pem) && (dash & (dash >> 1) & (dash >> 4) & valid) != 0)
        {
            found |= Bit(BuiltInPass.Pem);
        }

        if (!rare)
        {
            return found;
        }

        if (Wants(wanted, BuiltInPass.Email) && (block.Equal((byte)'@') & valid) != 0)
        {
            found |= Bit(BuiltInPass.Email);
        }

        if (Wants(wanted, BuiltInPass.Underscore) && (block.Equal((byte)'_') & valid) != 0)
        {
            found |= Bit(BuiltInPass.Underscore);
        }

        if (Wants(wanted, BuiltInPass.Slack) && (Pair(block.Equal((byte)'x'), 2) & valid) != 0)
        {
            found |= Bit(BuiltInPass.Slack);
        }

        if (Wants(wanted, BuiltInPass.Jwt) && (block.Equal((byte)'y') & (block.Equal((byte)'J') >> 1) & valid) != 0)
        {
            found |= Bit(BuiltInPass.Jwt);
        }

        return found;
    }

    /// <summary><see cref="NextNumeric(ReadOnlySpan{byte}, int, KindMask)"/> with one vector width.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static int NextNumeric<TBlock>(ReadOnlySpan<byte> text, int from, KindMask kinds)
        where TBlock : struct, IByteBlock<TBlock>
    {
        int remaining = text.Length - from;
        if (remaining <= Window)
        {
            return remaining <= 0 ? -1 : First(from, NumericMask(TBlock.Load(text[from..]), kinds));
        }

        for (int w = from; ; w += Stride)
        {
            remaining = text.Length - w;
            if (remaining > Window)
            {
                ulong mask = NumericMask(TBlock.Load(text.Slice(w, Window)), kinds) & ((1UL << Stride) - 1);
                if (mask != 0)
                {
                    return w + BitOperations.TrailingZeroCount(mask);
                }
            }
            else
            {
                int start = text.Length - Window;
                return First(start, NumericMask(TBlock.Load(text[start..]), kinds) & (ulong.MaxValue << (w - start)));
            }
        }
    }

    private static int First(int start, ulong mask) => mask == 0 ? -1 : start + BitOperations.TrailingZeroCount(mask);

    /// <summary>The number pass's candidates in a block: the masks of <c>+</c> and <c>(</c> only when the block has one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong NumericMask<TBlock>(in TBlock block, KindMask kinds)
        where TBlock : struct, IByteBlock<TBlock> =>
        NumericMask(
            block,
            (kinds & (KindMask.Card | KindMask.Ssn | KindMask.Phone)) != 0 ? block.Equal((byte)'-') : 0,
            kinds,
            signs: (kinds & KindMask.Phone) != 0 && block.EqualAny("+("u8) != 0);

    /// <summary>
    /// Candidates of the number pass, by the shapes of the first bytes of each kind (d a digit, s a space, dash or
    /// dot): SSN <c>ddd s dd s dddd</c>; card <c>dddd s dddd</c> (grouped) and 11 digits (the start of a run of 13 to
    /// 19); NANP <c>ddd s ddd s ddd</c>, <c>d s ddd s</c> (trunk prefix) and <c>(ddd)</c>; <c>+</c>, a digit and 7 more
    /// digits, separators or parentheses (E.164); two capitals and two digits (IBAN). Dates, times, amounts and most
    /// identifiers have none of these shapes, so the checks rarely run on ordinary text.
    /// </summary>
    /// <param name="block">The bytes.</param>
    /// <param name="dash">Where <paramref name="block"/> has dashes.</param>
    /// <param name="kinds">The kinds to look for.</param>
    /// <param name="signs">False when the block is known to hold no <c>+</c> and no <c>(</c>.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong NumericMask<TBlock>(in TBlock block, ulong dash, KindMask kinds, bool signs)
        where TBlock : struct, IByteBlock<TBlock>
    {
        ulong d = block.InRange((byte)'0', (byte)'9');
        ulong d3 = d & (d >> 1) & (d >> 2);
        ulong mask = 0;

        // Every shape but the IBAN's and the E.164 number's has three digits in a row: many cells have none.
        if ((kinds & (KindMask.Card | KindMask.Ssn | KindMask.Phone)) != 0 && d3 != 0)
        {
            ulong s = dash | block.EqualAny(" ."u8);
            ulong d4 = d3 & (d >> 3);
            if ((kinds & KindMask.Ssn) != 0)
            {
                mask |= d3 & (s >> 3) & (d >> 4) & (d >> 5) & (s >> 6) & (d4 >> 7);
            }

            if ((kinds & KindMask.Card) != 0)
            {
                ulong d8 = d4 & (d4 >> 4);
                mask |= d4 & (s >> 4) & (d4 >> 5);
                mask |= d8 & (d3 >> 8);
            }

            if ((kinds & KindMask.Phone) != 0)
            {
                mask |= d3 & (s >> 3) & (d3 >> 4) & (s >> 7) & (d3 >> 8);
                mask |= d & (s >> 1) & (d3 >> 2) & (s >> 5);
            }
        }

        if ((kinds & KindMask.Phone) != 0 && signs)
        {
            // "+", then 8 digits, separators or parentheses, the first a digit or "(" (E.164: 8 digits at least); "(ddd)".
            ulong open = block.Equal((byte)'(');
            ulong close = block.Equal((byte)')');
            ulong p = d | dash | block.EqualAny(" ."u8) | open | close;
            p &= p >> 1;
            p &= p >> 2;
            p &= p >> 4;
            mask |= block.Equal((byte)'+') & ((d | open) >> 1) & (p >> 1);
            mask |= open & (d3 >> 1) & (close >> 4);
        }

        ulong twoDigits = d & (d >> 1);
        if ((kinds & KindMask.Iban) != 0 && twoDigits != 0)
        {
            ulong upper = block.InRange((byte)'A', (byte)'Z');
            mask |= upper & (upper >> 1) & (twoDigits >> 2);
        }

        return mask;
    }

    /// <summary>AWS key ids (<c>A??A</c>) and Google API keys (<c>AIz</c>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong AccessKeyMask<TBlock>(in TBlock block, KindMask kinds)
        where TBlock : struct, IByteBlock<TBlock>
    {
        ulong a = block.Equal((byte)'A');
        ulong mask = 0;
        if ((kinds & KindMask.AwsKey) != 0)
        {
            mask |= Pair(a, 3);
        }

        if ((kinds & KindMask.SecretToken) != 0)
        {
            mask |= a & (block.Equal((byte)'z') >> 2);
        }

        return mask;
    }

    /// <summary>Positions where the byte of <paramref name="mask"/> occurs again <paramref name="distance"/> bytes on.</summary>
    private static ulong Pair(ulong mask, int distance) => mask & (mask >> distance);

    private static bool Wants(uint passes, BuiltInPass pass) => (passes & Bit(pass)) != 0;
}
