using Gatehouse.Policy.Rules;

namespace Gatehouse.Protocols.Postgres.Policy;

/// <summary>A request forwarded upstream whose response the server direction has not seen yet.</summary>
internal enum PgRequestKind : byte
{
    Parse,
    Bind,
    Describe,
    Execute,
    Close,
    Sync,
    Query,
    FunctionCall,
}

/// <summary>
/// One request in flight. <see cref="Denial"/> is set when the gateway sent a substitute that the server is
/// sure to reject instead of the client's message: the server's error for it becomes the policy error.
/// </summary>
internal struct PgRequest
{
    public PgRequestKind Kind;

    /// <summary>Parse: the statement it creates; Close of a statement: the statement it removes.</summary>
    public PgPreparedStatement? Statement;

    /// <summary>Parse: the text (and how it was lexed), owned by the request until the server answers.</summary>
    public PgStatementText? Text;

    public PolicyRuleInfo? Denial;

    /// <summary>Query, Describe and Execute with masking: the rule that masks the result's computed columns (-1: none).</summary>
    public int MaskRule;

    /// <summary>Query and Execute of a maskable <c>COPY table TO STDOUT</c>: what it copies.</summary>
    public Gatehouse.Policy.Masking.MaskCopyTarget? MaskCopy;

    /// <summary>Describe and Execute of a portal: its name (interned); null for Describe of a statement.</summary>
    public byte[]? Portal;

    /// <summary>Query and Execute with masking: the statement reads masked columns, so its errors and notices may echo their values.</summary>
    public bool MaskReads;

    /// <summary>A Describe the gateway sent itself (to learn a portal's columns): its answer is not forwarded.</summary>
    public bool Injected;

    public static PgRequest Of(PgRequestKind kind) => new() { Kind = kind, MaskRule = -1 };
}

/// <summary>
/// The requests in flight, in the order they were sent; the server answers in the same order (PostgreSQL docs
/// 55.2.3, extended query). A ring over an array: no allocation once it has grown to the pipeline depth.
/// </summary>
internal sealed class PgRequestQueue
{
    private PgRequest[] _items = new PgRequest[16];
    private int _head;

    public int Count { get; private set; }

    public ref PgRequest Front => ref _items[_head];

    public ref PgRequest this[int index] => ref _items[(_head + index) & (_items.Length - 1)];

    public void Enqueue(in PgRequest request)
    {
        if (Count == _items.Length)
        {
            var grown = new PgRequest[_items.Length * 2];
            for (int i = 0; i < Count; i++)
            {
                grown[i] = this[i];
            }

            _items = grown;
            _head = 0;
        }

        _items[(_head + Count) & (_items.Length - 1)] = request;
        Count++;
    }

    public PgRequest Dequeue()
    {
        PgRequest request = _items[_head];
        _items[_head] = default;
        _head = (_head + 1) & (_items.Length - 1);
        Count--;
        return request;
    }

    /// <summary>Removes the entry at <paramref name="index"/>, keeping the order of the rest.</summary>
    public void RemoveAt(int index)
    {
        for (int i = index; i < Count - 1; i++)
        {
            this[i] = this[i + 1];
        }

        this[Count - 1] = default;
        Count--;
    }
}
