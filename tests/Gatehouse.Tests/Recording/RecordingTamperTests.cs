using System.Buffers;
using System.Security.Cryptography;
using Gatehouse.Engine.Recording;
using K4os.Compression.LZ4;
using K4os.Compression.LZ4.Streams;

namespace Gatehouse.Tests.Recording;

/// <summary>
/// Each way of damaging a recording file is detected and reported exactly: which problem, which block, where; the
/// blocks that were not touched still verify.
/// </summary>
public sealed class RecordingTamperTests : IDisposable
{
    private const int Target = 5;

    private readonly RecordingFixture _fixture = new();

    public void Dispose() => _fixture.Dispose();

    /// <summary>A sealed recording of 300 events in 4 KiB blocks, its bytes, and its blocks as the reader found them.</summary>
    private async Task<(string Path, byte[] Bytes, IReadOnlyList<RecordingBlockInfo> Blocks)> RecordAsync(string id)
    {
        string path = await _fixture.RecordAsync(id);
        var verification = await RecordingReader.VerifyAsync(path, RecordingFixture.Key);
        Assert.Equal(RecordingIntegrity.Intact, verification.Integrity);
        Assert.True(verification.Blocks.Count >= Target + 4, $"{verification.Blocks.Count} blocks");
        return (path, await File.ReadAllBytesAsync(path), verification.Blocks);
    }

    private static byte[] Frame(byte[] bytes, RecordingBlockInfo block) => bytes.AsSpan((int)block.FileOffset, block.FileLength).ToArray();

    private static byte[] Without(byte[] bytes, RecordingBlockInfo block)
        => [.. bytes.AsSpan(0, (int)block.FileOffset), .. bytes.AsSpan((int)(block.FileOffset + block.FileLength))];

    private async Task<RecordingVerification> VerifyAsync(byte[] bytes, RecordingKey? key = null)
    {
        string path = Path.Combine(_fixture.Directory, Guid.NewGuid().ToString("N") + ".ghrec.lz4");
        await File.WriteAllBytesAsync(path, bytes);
        return await RecordingReader.VerifyAsync(path, key ?? RecordingFixture.Key);
    }

    [Theory]
    [InlineData(0.25)]
    [InlineData(0.5)]
    [InlineData(0.9)]
    public async Task One_altered_byte_in_a_block_is_reported_as_that_block_altered_and_nothing_else(double where)
    {
        var (_, bytes, blocks) = await RecordAsync("alter");
        var block = blocks[Target];
        // Inside the compressed data: after the 7-byte frame header and the 4-byte block size, before the end mark.
        int offset = (int)block.FileOffset + 11 + (int)((block.FileLength - 19) * where);
        bytes[offset] ^= 0x20;

        var result = await VerifyAsync(bytes);
        var problem = Assert.Single(result.Problems);
        Assert.Equal(RecordingProblemKind.AlteredBlock, problem.Kind);
        Assert.Equal(Target, problem.Block);
        Assert.Equal(block.FileOffset, problem.FileOffset);
        Assert.Equal(RecordingIntegrity.Damaged, result.Integrity);
        Assert.Equal(Target, result.VerifiedBlocks);
        Assert.All(result.Blocks.Where(b => b.Index != Target), b => Assert.Equal(RecordingBlockStatus.Verified, b.Status));
    }

    [Fact]
    public async Task A_deleted_block_is_reported_missing_by_index()
    {
        var (_, bytes, blocks) = await RecordAsync("delete");
        var result = await VerifyAsync(Without(bytes, blocks[Target]));

        var problem = Assert.Single(result.Problems);
        Assert.Equal(RecordingProblemKind.MissingBlocks, problem.Kind);
        Assert.Equal(Target, problem.Block);
        Assert.Equal($"block {Target} is missing (deleted)", problem.Detail);
        Assert.Equal(blocks[Target].FileOffset, problem.FileOffset); // where the next block now starts
        Assert.Equal(Target, result.VerifiedBlocks);
    }

    [Fact]
    public async Task Several_deleted_blocks_are_reported_as_one_range()
    {
        var (_, bytes, blocks) = await RecordAsync("delete-range");
        byte[] cut = [.. bytes.AsSpan(0, (int)blocks[Target].FileOffset), .. bytes.AsSpan((int)blocks[Target + 3].FileOffset)];
        var problem = Assert.Single((await VerifyAsync(cut)).Problems);
        Assert.Equal((RecordingProblemKind.MissingBlocks, (long)Target), (problem.Kind, problem.Block));
        Assert.Equal($"blocks {Target} to {Target + 2} are missing (deleted)", problem.Detail);
    }

    [Fact]
    public async Task Two_swapped_blocks_are_reported_as_reordered()
    {
        var (_, bytes, blocks) = await RecordAsync("swap");
        var a = blocks[Target];
        var b = blocks[Target + 1];
        byte[] swapped = [.. bytes.AsSpan(0, (int)a.FileOffset), .. Frame(bytes, b), .. Frame(bytes, a), .. bytes.AsSpan((int)(b.FileOffset + b.FileLength))];

        var result = await VerifyAsync(swapped);
        var problem = Assert.Single(result.Problems);
        Assert.Equal(RecordingProblemKind.ReorderedBlock, problem.Kind);
        Assert.Equal(Target, problem.Block);
        Assert.Equal($"block {Target} (file offset {a.FileOffset + b.FileLength}) comes after block {Target + 1}: blocks were reordered", problem.Detail);
        Assert.Equal(Target, result.VerifiedBlocks);
    }

    [Fact]
    public async Task A_duplicated_block_is_reported()
    {
        var (_, bytes, blocks) = await RecordAsync("duplicate");
        var block = blocks[Target];
        byte[] doubled = [.. bytes.AsSpan(0, (int)(block.FileOffset + block.FileLength)), .. Frame(bytes, block), .. bytes.AsSpan((int)(block.FileOffset + block.FileLength))];
        var problem = Assert.Single((await VerifyAsync(doubled)).Problems);
        Assert.Equal((RecordingProblemKind.DuplicateBlock, (long)Target), (problem.Kind, problem.Block));
    }

    [Fact]
    public async Task Truncation_in_the_middle_of_a_block_is_unsealed_with_the_partial_block_and_the_last_verified_position()
    {
        var (_, bytes, blocks) = await RecordAsync("truncate-middle");
        var block = blocks[Target];
        var result = await VerifyAsync(bytes.AsSpan(0, (int)block.FileOffset + block.FileLength / 2).ToArray());

        Assert.Equal(RecordingIntegrity.Unsealed, result.Integrity);
        Assert.Equal(2, result.Problems.Count);
        Assert.Equal(RecordingProblemKind.TruncatedBlock, result.Problems[0].Kind);
        Assert.Equal(Target, result.Problems[0].Block);
        Assert.Equal(block.FileOffset, result.Problems[0].FileOffset);
        Assert.Equal(RecordingProblemKind.Unsealed, result.Problems[1].Kind);
        Assert.Equal(Target - 1, result.Problems[1].Block);
        Assert.Equal(Target, result.VerifiedBlocks);
        Assert.Equal(block.FileOffset, result.VerifiedFileOffset);
    }

    [Fact]
    public async Task Truncation_at_a_block_boundary_is_unsealed_after_the_last_block()
    {
        var (_, bytes, blocks) = await RecordAsync("truncate-boundary");
        var result = await VerifyAsync(bytes.AsSpan(0, (int)blocks[Target].FileOffset).ToArray());

        Assert.Equal(RecordingIntegrity.Unsealed, result.Integrity);
        var problem = Assert.Single(result.Problems);
        Assert.Equal(RecordingProblemKind.Unsealed, problem.Kind);
        Assert.Equal(Target - 1, problem.Block);
        Assert.Equal($"no final seal: the recording may be truncated after block {Target - 1} (verified through file offset {blocks[Target].FileOffset})", problem.Detail);
        Assert.Equal(blocks[Target].FileOffset, result.VerifiedFileOffset);
    }

    [Fact]
    public async Task Removing_the_final_block_leaves_the_recording_unsealed()
    {
        var (_, bytes, blocks) = await RecordAsync("drop-final");
        var result = await VerifyAsync(bytes.AsSpan(0, (int)blocks[^1].FileOffset).ToArray());
        Assert.Equal(RecordingIntegrity.Unsealed, result.Integrity);
        Assert.Equal(RecordingProblemKind.Unsealed, Assert.Single(result.Problems).Kind);
    }

    [Fact]
    public async Task A_wrong_key_is_reported_once_as_the_wrong_key()
    {
        var (path, _, _) = await RecordAsync("wrong-key");
        var other = new RecordingKey("test-key-1", new byte[32]);
        var result = await RecordingReader.VerifyAsync(path, other);

        var problem = Assert.Single(result.Problems);
        Assert.Equal(RecordingProblemKind.WrongKey, problem.Kind);
        Assert.Equal(RecordingIntegrity.Damaged, result.Integrity);
        Assert.Equal(0, result.VerifiedBlocks);
        Assert.Empty(await RecordingFixture.ReadAllAsync(path, other));
    }

    [Fact]
    public async Task Another_key_id_is_reported_and_only_the_chain_is_checked()
    {
        var (path, _, blocks) = await RecordAsync("key-id");
        var result = await RecordingReader.VerifyAsync(path, new RecordingKey("test-key-2", new byte[32]));
        Assert.Equal(RecordingProblemKind.KeyIdMismatch, Assert.Single(result.Problems).Kind);
        Assert.False(result.SignaturesChecked);
        Assert.Equal(RecordingIntegrity.Intact, result.Integrity);

        var unkeyed = await RecordingReader.VerifyAsync(path, key: null);
        Assert.Empty(unkeyed.Problems);
        Assert.False(unkeyed.SignaturesChecked);
        Assert.Equal(blocks.Count, unkeyed.VerifiedBlocks);
    }

    [Fact]
    public async Task A_block_rewritten_with_a_recomputed_hash_but_no_key_has_a_bad_signature()
    {
        var (_, bytes, blocks) = await RecordAsync("forge");
        var block = blocks[Target];
        byte[] plain = Decode(Frame(bytes, block));
        // Change an event byte, then recompute the chain value as a forger without the key can.
        plain[MiddlePayloadByte(plain)] ^= 1;
        var seal = plain.AsSpan(plain.Length - RecordingFormatSealLength);
        SHA256.HashData([.. seal.Slice(18, 32), .. plain.AsSpan(0, SealRecordStart(plain))], seal.Slice(50, 32));
        byte[] forged = Encode(plain);
        byte[] tampered = [.. bytes.AsSpan(0, (int)block.FileOffset), .. forged, .. bytes.AsSpan((int)(block.FileOffset + block.FileLength))];

        var result = await VerifyAsync(tampered);
        var problem = Assert.Single(result.Problems);
        Assert.Equal(RecordingProblemKind.BadSignature, problem.Kind);
        Assert.Equal(Target, problem.Block);
        Assert.Equal($"the seal of block {Target} (file offset {block.FileOffset}) is not signed by key 'test-key-1'", problem.Detail);
    }

    [Fact]
    public async Task A_block_spliced_from_another_recording_breaks_the_chain()
    {
        var (_, bytes, blocks) = await RecordAsync("splice-a");
        var (_, otherBytes, otherBlocks) = await RecordAsync("splice-b"); // same key, same events, another nonce
        var block = blocks[Target];
        byte[] spliced = [.. bytes.AsSpan(0, (int)block.FileOffset), .. Frame(otherBytes, otherBlocks[Target]), .. bytes.AsSpan((int)(block.FileOffset + block.FileLength))];

        var result = await VerifyAsync(spliced);
        Assert.All(result.Problems, p => Assert.Equal(RecordingProblemKind.ChainBroken, p.Kind));
        Assert.Equal([Target, Target + 1], result.Problems.Select(p => p.Block));
        Assert.Equal(Target, result.VerifiedBlocks);
    }

    [Fact]
    public async Task Bytes_inserted_between_blocks_are_reported_and_skipped()
    {
        var (_, bytes, blocks) = await RecordAsync("garbage");
        int at = (int)blocks[Target].FileOffset;
        byte[] withGarbage = [.. bytes.AsSpan(0, at), .. "not a frame at all"u8, .. bytes.AsSpan(at)];

        var result = await VerifyAsync(withGarbage);
        var problem = Assert.Single(result.Problems);
        Assert.Equal(RecordingProblemKind.UnexpectedData, problem.Kind);
        Assert.Equal(at, problem.FileOffset);
        Assert.Equal(blocks.Count, result.Blocks.Count);
        Assert.All(result.Blocks, b => Assert.Equal(RecordingBlockStatus.Verified, b.Status));
    }

    [Fact]
    public async Task Events_of_a_damaged_block_are_left_out_unless_asked_for()
    {
        var (_, bytes, blocks) = await RecordAsync("unverified-events");
        var block = blocks[Target];
        byte[] plain = Decode(Frame(bytes, block));
        plain[MiddlePayloadByte(plain)] ^= 1; // the content changes, the seal does not
        byte[] altered = [.. bytes.AsSpan(0, (int)block.FileOffset), .. Encode(plain), .. bytes.AsSpan((int)(block.FileOffset + block.FileLength))];
        string path = Path.Combine(_fixture.Directory, "altered.ghrec.lz4");
        await File.WriteAllBytesAsync(path, altered);

        var verified = await RecordingFixture.ReadAllAsync(path);
        var all = await RecordingFixture.ReadAllAsync(path, options: new RecordingReaderOptions { IncludeUnverified = true });
        Assert.Equal(301, all.Count);
        Assert.Equal(301 - block.Events, verified.Count);
        Assert.All(all.Where(e => e.Block == Target), e => Assert.False(e.Verified));
        Assert.Equal(RecordingProblemKind.AlteredBlock, Assert.Single((await RecordingReader.VerifyAsync(path, RecordingFixture.Key)).Problems).Kind);
    }

    private const int RecordingFormatSealLength = 114;

    private static int SealRecordStart(byte[] plain) => RecordingFixture.Records(plain)[^1].RecordOffset;

    /// <summary>A byte in the middle of the payload of the block's middle record.</summary>
    private static int MiddlePayloadByte(byte[] plain)
    {
        var records = RecordingFixture.Records(plain);
        var middle = records[records.Count / 2];
        Assert.Equal(RecordKind.ServerMessage, middle.Kind is RecordKind.ClientMessage ? RecordKind.ServerMessage : middle.Kind);
        return middle.PayloadOffset + middle.PayloadLength / 2;
    }

    private static byte[] Decode(byte[] frame)
    {
        var output = new ArrayBufferWriter<byte>();
        LZ4Frame.Decode(frame.AsSpan(), output, 0);
        return output.WrittenSpan.ToArray();
    }

    private static byte[] Encode(byte[] plain)
    {
        var output = new ArrayBufferWriter<byte>();
        LZ4Frame.Encode(plain.AsSpan(), output, new LZ4EncoderSettings { ChainBlocks = false, BlockSize = 64 * 1024, ContentChecksum = true, CompressionLevel = LZ4Level.L00_FAST });
        return output.WrittenSpan.ToArray();
    }
}
