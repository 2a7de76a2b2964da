using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Gatehouse.Policy.Masking;

/// <summary>
/// Up to 64 bytes in vector registers, asked for bit masks: bit i of a mask answers for byte i, and bits past the
/// end are 0. A block shorter than 64 bytes is loaded as overlapping vectors (the last one ends at the last byte),
/// so nothing is read past the span and, from 16 bytes on, nothing is copied; the vector lanes past the end are zero,
/// which no mask looks for. Two implementations, so the mask code is written once
/// and compiled for the widest vectors the machine runs natively (256 bits on x64 with AVX2; 128 bits otherwise:
/// SSE2, Arm64 AdvSimd).
/// </summary>
internal interface IByteBlock<TSelf>
    where TSelf : struct, IByteBlock<TSelf>
{
    /// <summary>Loads <paramref name="bytes"/>, of 1 to 64 bytes.</summary>
    static abstract TSelf Load(ReadOnlySpan<byte> bytes);

    /// <summary>Bytes equal to <paramref name="value"/>.</summary>
    ulong Equal(byte value);

    /// <summary>Bytes equal to any of <paramref name="values"/>, in one mask (one extraction for all of them).</summary>
    ulong EqualAny(ReadOnlySpan<byte> values);

    /// <summary>Bytes from <paramref name="low"/> to <paramref name="high"/>, inclusive.</summary>
    ulong InRange(byte low, byte high);
}

/// <summary>Two 256-bit vectors: bytes 0-31 and the last 32.</summary>
internal readonly struct ByteBlock256 : IByteBlock<ByteBlock256>
{
    private readonly Vector256<byte> _first;
    private readonly Vector256<byte> _last;
    private readonly int _shift;

    private ByteBlock256(Vector256<byte> first, Vector256<byte> last, int shift)
    {
        _first = first;
        _last = last;
        _shift = shift;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ByteBlock256 Load(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length >= 32)
        {
            int shift = bytes.Length - 32;
            return new(Vector256.Create(bytes), Vector256.Create(bytes[shift..]), shift);
        }

        if (bytes.Length >= 16)
        {
            int shift = bytes.Length - 16;
            return new(Vector128.Create(bytes).ToVector256(), Vector128.Create(bytes[shift..]).ToVector256(), shift);
        }

        return new(ByteBlock128.Short(bytes).ToVector256(), Vector256<byte>.Zero, 0);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Equal(byte value)
    {
        var v = Vector256.Create(value);
        return Vector256.Equals(_first, v).ExtractMostSignificantBits() | ((ulong)Vector256.Equals(_last, v).ExtractMostSignificantBits() << _shift);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong EqualAny(ReadOnlySpan<byte> values)
    {
        var first = Vector256<byte>.Zero;
        var last = Vector256<byte>.Zero;
        foreach (byte value in values)
        {
            var v = Vector256.Create(value);
            first |= Vector256.Equals(_first, v);
            last |= Vector256.Equals(_last, v);
        }

        return first.ExtractMostSignificantBits() | ((ulong)last.ExtractMostSignificantBits() << _shift);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong InRange(byte low, byte high)
    {
        // One unsigned comparison: (b - low) <= (high - low).
        var l = Vector256.Create(low);
        var width = Vector256.Create((byte)(high - low));
        return Vector256.LessThanOrEqual(_first - l, width).ExtractMostSignificantBits()
            | ((ulong)Vector256.LessThanOrEqual(_last - l, width).ExtractMostSignificantBits() << _shift);
    }
}

/// <summary>Four 128-bit vectors: bytes 0-15, 16-31, 32-47 and the last 16, as far as there are bytes.</summary>
internal readonly struct ByteBlock128 : IByteBlock<ByteBlock128>
{
    private readonly Vector128<byte> _a;
    private readonly Vector128<byte> _b;
    private readonly Vector128<byte> _c;
    private readonly Vector128<byte> _d;
    private readonly int _shiftB;
    private readonly int _shiftC;
    private readonly int _shiftD;

    private ByteBlock128(Vector128<byte> a, Vector128<byte> b, Vector128<byte> c, Vector128<byte> d, int shiftB, int shiftC, int shiftD)
    {
        _a = a;
        _b = b;
        _c = c;
        _d = d;
        _shiftB = shiftB;
        _shiftC = shiftC;
        _shiftD = shiftD;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ByteBlock128 Load(ReadOnlySpan<byte> bytes)
    {
        int length = bytes.Length;
        if (length >= 32)
        {
            int shiftD = length - 16;
            int shiftC = Math.Min(32, shiftD);
            return new(Vector128.Create(bytes), Vector128.Create(bytes[16..]), Vector128.Create(bytes[shiftC..]), Vector128.Create(bytes[shiftD..]), 16, shiftC, shiftD);
        }

        var zero = Vector128<byte>.Zero;
        return length >= 16
            ? new(Vector128.Create(bytes), Vector128.Create(bytes[(length - 16)..]), zero, zero, length - 16, 0, 0)
            : new(Short(bytes), zero, zero, zero, 0, 0, 0);
    }

    /// <summary>Fewer than 16 bytes, copied into zeros.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Vector128<byte> Short(ReadOnlySpan<byte> bytes)
    {
        Span<byte> padded = stackalloc byte[16];
        bytes.CopyTo(padded);
        return Vector128.Create((ReadOnlySpan<byte>)padded);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Equal(byte value)
    {
        var v = Vector128.Create(value);
        return Mask(Vector128.Equals(_a, v), Vector128.Equals(_b, v), Vector128.Equals(_c, v), Vector128.Equals(_d, v));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong EqualAny(ReadOnlySpan<byte> values)
    {
        var a = Vector128<byte>.Zero;
        var b = Vector128<byte>.Zero;
        var c = Vector128<byte>.Zero;
        var d = Vector128<byte>.Zero;
        foreach (byte value in values)
        {
            var v = Vector128.Create(value);
            a |= Vector128.Equals(_a, v);
            b |= Vector128.Equals(_b, v);
            c |= Vector128.Equals(_c, v);
            d |= Vector128.Equals(_d, v);
        }

        return Mask(a, b, c, d);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong InRange(byte low, byte high)
    {
        var l = Vector128.Create(low);
        var width = Vector128.Create((byte)(high - low));
        return Mask(Vector128.LessThanOrEqual(_a - l, width), Vector128.LessThanOrEqual(_b - l, width),
            Vector128.LessThanOrEqual(_c - l, width), Vector128.LessThanOrEqual(_d - l, width));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong Mask(Vector128<byte> a, Vector128<byte> b, Vector128<byte> c, Vector128<byte> d) =>
        a.ExtractMostSignificantBits()
        | ((ulong)b.ExtractMostSignificantBits() << _shiftB)
        | ((ulong)c.ExtractMostSignificantBits() << _shiftC)
        | ((ulong)d.ExtractMostSignificantBits() << _shiftD);
}
