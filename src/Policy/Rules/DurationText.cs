using System.Globalization;

namespace Gatehouse.Policy.Rules;

/// <summary>
/// Durations as people write them in policy files, the config, the admin API and the command line:
/// <c>500ms</c>, <c>15s</c>, <c>10m</c>, <c>1h</c>, <c>2d</c>, <c>1.5h</c>, and combinations such as <c>1h30m</c>.
/// </summary>
public static class DurationText
{
    private static readonly (string Suffix, double Milliseconds)[] s_units =
        [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)];

    /// <summary>Parses a duration; "0" is zero. False for anything else, including negative or absurd values.</summary>
    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var rest = text.AsSpan().Trim();
        if (rest is "0")
        {
            return true;
        }

        double total = 0;
        while (!rest.IsEmpty)
        {
            int digits = 0;
            while (digits < rest.Length && (char.IsAsciiDigit(rest[digits]) || rest[digits] == '.'))
            {
                digits++;
            }

            int letters = digits;
            while (letters < rest.Length && char.IsAsciiLetterLower(rest[letters]))
            {
                letters++;
            }

            if (digits == 0 || letters == digits
                || !double.TryParse(rest[..digits], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double number))
            {
                return false;
            }

            var suffix = rest[digits..letters];
            double factor = 0;
            foreach (var (unit, milliseconds) in s_units)
            {
                if (suffix.SequenceEqual(unit))
                {
                    factor = milliseconds;
                    break;
                }
            }

            if (factor == 0)
            {
                return false;
            }

            total += number * factor;
            rest = rest[letters..];
        }

        // At most about 100 years: beyond that a duration is a typo, and DateTimeOffset arithmetic would overflow.
        if (total > 3_650_000_000_000d)
        {
            return false;
        }

        value = TimeSpan.FromMilliseconds(total);
        return true;
    }

    /// <summary>The exact form, largest units first: <c>1h</c>, <c>1h30m</c>, <c>2d</c>, <c>250ms</c>.</summary>
    public static string Format(TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            return "0";
        }

        var parts = new System.Text.StringBuilder();
        long ms = (long)value.TotalMilliseconds;
        foreach (var (unit, size) in s_units.Reverse())
        {
            long count = ms / (long)size;
            if (count > 0)
            {
                parts.Append(count.ToString(CultureInfo.InvariantCulture)).Append(unit);
                ms -= count * (long)size;
            }
        }

        return parts.ToString();
    }
}
