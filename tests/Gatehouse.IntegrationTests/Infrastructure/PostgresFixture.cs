namespace Gatehouse.IntegrationTests.Infrastructure;

/// <summary>
/// One throwaway PostgreSQL shared by every test class in the "postgres" collection: starting a cluster
/// costs about a second, so classes share it and each test creates what it needs under its own names.
/// Use with <c>[Collection(PostgresCollection.Name)]</c> and a constructor parameter of this type.
/// </summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    private PostgresServer? _server;

    public PostgresServer Server =>
        _server ?? throw new InvalidOperationException("PostgresFixture.Server used before xunit initialized the fixture.");

    public async Task InitializeAsync()
    {
        _server = await PostgresServer.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
            _server = null;
        }
    }
}

/// <summary>The xunit collection that owns the shared <see cref="PostgresFixture"/>.</summary>
[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresFixture>
{
    public const string Name = "postgres";
}
