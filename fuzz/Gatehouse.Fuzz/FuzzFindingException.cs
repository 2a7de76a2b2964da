namespace Gatehouse.Fuzz;

/// <summary>
/// An oracle of a fuzz target failed: the code under test did not throw, but it gave a wrong answer (two layouts
/// of the same bytes got different verdicts, a handler stopped without recording why, ...).
/// </summary>
public sealed class FuzzFindingException : Exception
{
    public FuzzFindingException()
    {
    }

    public FuzzFindingException(string message)
        : base(message)
    {
    }

    public FuzzFindingException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
