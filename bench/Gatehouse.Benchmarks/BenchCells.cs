using System.Globalization;
using System.Text;

namespace Gatehouse.Benchmarks;

/// <summary>
/// Text values for the detector benchmarks, as result rows carry them: names, addresses, product descriptions,
/// timestamps, order ids, amounts, identifiers and capitalised prose (20 to 200 bytes each), and the same with a
/// sensitive value in some. Generated from a fixed seed, so every run scans the same bytes.
/// </summary>
internal static class BenchCells
{
    private static readonly string[] First = ["Margaret", "José", "Aiko", "Olusegun", "Anna-Lena", "Mohammed", "Siobhán", "Wei", "Priya", "Lars"];
    private static readonly string[] Last = ["Hamilton", "García", "Tanaka", "Adeyemi", "Müller", "Al-Farsi", "O'Brien", "Zhang", "Iyer", "Andersson"];
    private static readonly string[] Streets = ["Amphitheatre Parkway", "Baker Street", "Rue de Rivoli", "Kurfürstendamm", "Avenida Paulista", "Nanjing Road", "Herengracht", "Calle Mayor"];
    private static readonly string[] Cities = ["Mountain View, CA", "London NW1 6XE", "Paris 75001", "Berlin", "São Paulo - SP", "Shanghai", "Amsterdam", "Madrid"];
    private static readonly string[] Products =
    [
        "Stainless steel water bottle, {0} ml, keeps drinks cold for 24 hours. Dishwasher safe.",
        "Apple iPhone 15 Pro, {0} GB, Natural Titanium. Includes USB-C cable.",
        "Organic Arabica coffee beans, medium roast, {0} g bag. Notes of chocolate and citrus.",
        "Ergonomic office chair with lumbar support, adjustable armrests, max load {0} kg.",
        "LED desk lamp, {0} lm, three colour temperatures, Auto-Off after 45 minutes.",
        "Wireless noise-cancelling headphones, up to {0} hours of playback, Bluetooth 5.3.",
    ];
    private static readonly string[] Statuses = ["shipped", "pending", "delivered", "cancelled", "refunded", "on hold"];

    /// <summary>About <paramref name="count"/> cells without anything a detector finds.</summary>
    public static byte[][] Clean(int count)
    {
        var random = new Random(20240315);
        var cells = new byte[count][];
        for (int i = 0; i < count; i++)
        {
            cells[i] = Encoding.UTF8.GetBytes(CleanCell(random, i));
        }

        return cells;
    }

    /// <summary>Cells of which one in three holds a sensitive value (one of each detector kind in turn) among ordinary text.</summary>
    public static byte[][] WithMatches(int count)
    {
        string[] secrets =
        [
            "jane.doe@example.com", "4111 1111 1111 1111", "123-45-6789", "+1 415 555 2671", "(650) 555-0100",
            "DE89 3704 0044 0532 0130 00", "AKIAIOSFODNN7EXAMPLE", "ghp_u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8d",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ];
        var random = new Random(20240316);
        var cells = new byte[count][];
        for (int i = 0; i < count; i++)
        {
            string cell = i % 3 == 0
                ? $"Contact {First[random.Next(First.Length)]} at {secrets[i / 3 % secrets.Length]} about order {random.Next(100000, 999999)}"
                : CleanCell(random, i);
            cells[i] = Encoding.UTF8.GetBytes(cell);
        }

        return cells;
    }

    /// <summary>Clean cells joined by spaces and newlines up to <paramref name="length"/> bytes: a document or a log in one value.</summary>
    public static byte[] LongText(int length)
    {
        var random = new Random(20240317);
        var text = new List<byte>(length + 256);
        for (int i = 0; text.Count < length; i++)
        {
            text.AddRange(Encoding.UTF8.GetBytes(CleanCell(random, i)));
            text.Add(i % 5 == 4 ? (byte)'\n' : (byte)' ');
        }

        return [.. text.Take(length)];
    }

    private static Guid RandomGuid(Random random)
    {
        Span<byte> bytes = stackalloc byte[16];
        random.NextBytes(bytes);
        return new Guid(bytes);
    }

    private static string CleanCell(Random random, int i)
    {
        string name = $"{First[random.Next(First.Length)]} {Last[random.Next(Last.Length)]}";
        var at = new DateTime(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddSeconds(random.Next(0, 366 * 86400));
        return (i % 8) switch
        {
            0 => name,
            1 => $"{random.Next(1, 2000)} {Streets[random.Next(Streets.Length)]}, {Cities[random.Next(Cities.Length)]}",
            2 => string.Format(CultureInfo.InvariantCulture, Products[random.Next(Products.Length)], random.Next(100, 1000)),
            3 => at.ToString("yyyy-MM-dd HH:mm:ss.ffffff+00", CultureInfo.InvariantCulture),
            4 => $"ORD-{at:yyyy}-{random.Next(0, 1_000_000):D6} {Statuses[random.Next(Statuses.Length)]} on {at:ddd, dd MMM yyyy}",
            5 => string.Create(CultureInfo.InvariantCulture, $"Invoice INV-{random.Next(1, 99999):D5}: {random.Next(1, 100)} items, total {random.Next(100, 999999) / 100.0:F2} EUR, VAT 19 %"),
            6 => $"{RandomGuid(random):D} updated by {name} at {at:HH:mm}",
            _ => $"{name} wrote: The delivery to {Cities[random.Next(Cities.Length)]} arrived on {at:dddd} in good condition, thanks!",
        };
    }
}
