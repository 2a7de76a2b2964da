using System.Text;

namespace Gatehouse.Benchmarks;

/// <summary>The statements the SQL and policy benchmarks lex, classify and decide: typical sizes of real traffic.</summary>
internal static class BenchStatements
{
    public static IEnumerable<string> Names() => ["PointSelect", "Join", "Large"];

    /// <summary>The statement's UTF-8 bytes, by name.</summary>
    public static byte[] Get(string name) => Encoding.UTF8.GetBytes(name switch
    {
        "PointSelect" => PointSelect,
        "Join" => Join,
        "Large" => Large(),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "no such benchmark statement"),
    });

    // 60 bytes.
    private const string PointSelect = "SELECT id, name, email FROM public.users WHERE id = $1 /* */";

    // 398 bytes.
    private const string Join =
        "SELECT o.id, o.created_at, c.name AS customer, sum(li.quantity * li.unit_price) AS total, count(*) AS lines "
        + "FROM sales.orders o JOIN sales.customers c ON c.id = o.customer_id "
        + "LEFT JOIN sales.line_items li ON li.order_id = o.id "
        + "WHERE o.created_at >= $1 AND o.created_at < $2 AND c.region = 'EMEA' AND o.status <> 'cancelled' "
        + "GROUP BY o.id, o.created_at, c.name HAVING sum(li.quantity) > 0 ORDER BY total DESC LIMIT 50 -- report";

    // About 4 KB.
    private static string Large()
    {
        var sb = new StringBuilder("WITH recent AS (SELECT id, customer_id FROM sales.orders WHERE created_at > now() - interval '7 days') SELECT r.id");
        int i = 0;
        while (sb.Length < 3900)
        {
            sb.Append(", coalesce(r.c").Append(i).Append(", 'n/a') AS \"col ").Append(i).Append("\" /* c */");
            i++;
        }

        sb.Append(" FROM recent r JOIN sales.customers c ON c.id = r.customer_id WHERE c.name LIKE E'A\\'%'");
        return sb.ToString();
    }
}
