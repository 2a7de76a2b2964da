using Gatehouse.Protocols.Postgres.Masking;

namespace Gatehouse.Tests.Postgres;

/// <summary>
/// View columns followed to base columns, and view dependencies to base table columns, over hand-made catalogs:
/// nesting, expressions, views that did not describe, cycles and nesting too deep, system views.
/// Table OIDs are below 100, view OIDs 100 and up.
/// </summary>
public sealed class PgViewResolverTests
{
    private static readonly PgColumnOrigin Unknown = PgColumnOrigin.Unknown;
    private static readonly PgColumnOrigin Expr = PgColumnOrigin.Expression;

    private static PgColumnOrigin Col(uint oid, short attnum) => PgColumnOrigin.Column(oid, attnum);

    private static Dictionary<uint, PgColumnOrigin[]> Origins(Dictionary<uint, PgColumnOrigin[]> described, params uint[] otherViews) =>
        PgViewResolver.ResolveOrigins(described, described.Keys.Concat(otherViews).ToHashSet());

    [Fact]
    public void Base_columns_and_expressions_are_kept_as_described()
    {
        var resolved = Origins(new() { [100] = [Col(1, 2), Expr, Col(1, 1), Unknown] });
        Assert.Equal([Col(1, 2), Expr, Col(1, 1), Unknown], resolved[100]);
    }

    [Fact]
    public void Columns_of_nested_views_are_followed_to_the_base_column_or_the_expression()
    {
        var resolved = Origins(new()
        {
            [100] = [Col(1, 2), Expr, Col(1, 1)],          // SELECT ssn AS x, upper(name) AS u, id FROM t
            [101] = [Col(100, 2), Col(100, 1), Expr],      // SELECT u, x, id + 1 FROM v100
            [102] = [Col(101, 2), Col(101, 1), Col(2, 5)], // SELECT x, u, other.col FROM v101 JOIN other
        });
        Assert.Equal([Expr, Col(1, 2), Expr], resolved[101]);
        Assert.Equal([Col(1, 2), Expr, Col(2, 5)], resolved[102]);
    }

    [Fact]
    public void A_column_of_a_view_that_did_not_describe_or_is_not_described_is_unknown()
    {
        var resolved = Origins(new()
        {
            [100] = [Unknown, Unknown],
            [101] = [Col(100, 1), Col(103, 1)], // 103: a system view, not described
            [102] = [Col(100, 7)],              // past the view's last column
        }, 103);
        Assert.Equal([Unknown, Unknown], resolved[101]);
        Assert.Equal([Unknown], resolved[102]);
    }

    [Fact]
    public void A_cycle_is_unknown()
    {
        var resolved = Origins(new()
        {
            [100] = [Col(101, 1), Col(1, 1)],
            [101] = [Col(100, 1)],
            [102] = [Col(102, 1)],
        });
        Assert.Equal([Unknown, Col(1, 1)], resolved[100]);
        Assert.Equal([Unknown], resolved[101]);
        Assert.Equal([Unknown], resolved[102]);
    }

    [Theory]
    [InlineData(PgViewResolver.MaxDepth + 1, true)]
    [InlineData(PgViewResolver.MaxDepth + 2, false)]
    public void Nesting_is_followed_through_as_many_views_as_the_limit(int views, bool resolves)
    {
        // View 100 selects from 101, which selects from 102, ... the last one from table 1: from view 100's
        // column, views - 1 nested views are followed.
        var described = new Dictionary<uint, PgColumnOrigin[]>();
        for (uint i = 0; i < views; i++)
        {
            described[100 + i] = [i == views - 1 ? Col(1, 3) : Col(100 + i + 1, 1)];
        }

        var resolved = Origins(described);
        Assert.Equal(resolves ? Col(1, 3) : Unknown, resolved[100][0]);
        Assert.Equal(Col(1, 3), resolved[(uint)(100 + views - 1)][0]);
    }

    [Fact]
    public void Dependencies_follow_bare_columns_exactly_and_expand_computed_or_whole_view_references()
    {
        var described = new Dictionary<uint, PgColumnOrigin[]>
        {
            [100] = [Col(1, 2), Expr, Col(1, 1)],
            [101] = [Col(100, 1)],
            [102] = [Expr],
            [103] = [Expr],
        };
        var dependencies = new Dictionary<uint, IReadOnlyList<PgColumnOrigin>>
        {
            [100] = [Col(1, 2), Col(1, 3), Col(1, 1), Col(1, 2)],
            [101] = [Col(100, 1)],               // a bare column of v100: t.2 only
            [102] = [Col(100, 2), Col(2, 4)],    // a computed column of v100: all of v100's
            [103] = [Col(100, 0)],               // v100 as a whole (count(*) over it)
        };
        var resolved = PgViewResolver.ResolveOrigins(described, described.Keys.ToHashSet());
        var result = PgViewResolver.ResolveDependencies(dependencies, resolved, described.Keys.ToHashSet());
        Assert.Equal([Col(1, 1), Col(1, 2), Col(1, 3)], result[100]);
        Assert.Equal([Col(1, 2)], result[101]);
        Assert.Equal([Col(1, 1), Col(1, 2), Col(1, 3), Col(2, 4)], result[102]);
        Assert.Equal([Col(1, 1), Col(1, 2), Col(1, 3)], result[103]);
    }

    [Fact]
    public void Dependencies_through_a_view_without_origins_use_its_own_dependencies()
    {
        // 200 is a system view (pg_roles, say): not described, but its dependencies are known.
        var dependencies = new Dictionary<uint, IReadOnlyList<PgColumnOrigin>>
        {
            [100] = [Col(200, 1), Col(1, 0)],
            [200] = [Col(50, 1), Col(50, 2)],
        };
        var result = PgViewResolver.ResolveDependencies(dependencies, new Dictionary<uint, PgColumnOrigin[]>(), new HashSet<uint> { 100, 200 });
        Assert.Equal([Col(1, 0), Col(50, 1), Col(50, 2)], result[100]);
    }

    [Fact]
    public void A_dependency_cycle_is_marked_incomplete()
    {
        var dependencies = new Dictionary<uint, IReadOnlyList<PgColumnOrigin>>
        {
            [100] = [Col(101, 0), Col(1, 1)],
            [101] = [Col(100, 0)],
        };
        var result = PgViewResolver.ResolveDependencies(dependencies, new Dictionary<uint, PgColumnOrigin[]>(), new HashSet<uint> { 100, 101 });
        Assert.Equal([Unknown, Col(1, 1)], result[100]);
        Assert.Contains(Unknown, result[101]);
    }

    [Fact]
    public void A_relation_reports_names_and_origins_by_attribute_number()
    {
        var table = new PgRelation(1, "s", "t", 'r', ["id", null, "ssn"]);
        Assert.Equal("ssn", table.ColumnName(3));
        Assert.Null(table.ColumnName(2));
        Assert.Null(table.ColumnName(0));
        Assert.Null(table.ColumnName(-1));
        Assert.Null(table.ColumnName(4));
        Assert.Equal(Col(1, 3), table.Origin(3));
        Assert.Equal(Unknown, table.Origin(2));
        Assert.Equal(Unknown, table.Origin(9));

        var view = new PgRelation(100, "s", "v", 'v', ["x", "u"], [Col(1, 3), Expr], [Col(1, 3)]);
        Assert.Equal(Col(1, 3), view.Origin(1));
        Assert.Equal(Expr, view.Origin(2));
        Assert.Equal(Unknown, view.Origin(3));
        Assert.Equal(Unknown, new PgRelation(101, "s", "w", 'v', ["x"]).Origin(1));
        Assert.Equal([Col(1, 3)], view.DependsOn);
    }

    [Theory]
    [InlineData(0u, (short)0, "expression")]
    [InlineData(0u, (short)3, "expression")]
    [InlineData(42u, (short)0, "expression")]
    [InlineData(42u, (short)3, "42.3")]
    [InlineData(42u, (short)-1, "42.-1")]
    public void A_RowDescription_field_names_a_column_only_with_a_table_and_a_column_number(uint table, short attnum, string expected) =>
        Assert.Equal(expected, PgColumnOrigin.FromRowDescription(table, attnum).ToString());
}
