#!/usr/bin/env python3
"""A second, independent verifier of Gatehouse recordings, written from docs/recording-format.md.

    lz4 -dc recording.ghrec.lz4 | python3 docs/recording-verify.py <key as hex>

Checks every block of the record stream (chain, index, stream offset, HMAC) and prints
"<blocks> blocks, <events> events, sealed|recovered|UNSEALED"; exits 1 at the first problem.
"""
import hashlib, hmac, struct, sys

def varint(data, i):
    value, shift = 0, 0
    while True:
        byte = data[i]; i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7

data, key = sys.stdin.buffer.read(), bytes.fromhex(sys.argv[1])
i = block_start = blocks = events = 0
chain, flags = None, 0
try:
    while i < len(data):
        start, kind = i, data[i]
        time, i = varint(data, i + 2)
        length, i = varint(data, i)
        payload, i = data[i:i + length], i + length
        if kind == 0x01:
            assert start == 0 and payload[:4] == b"GHRC" and payload[4] == 1, "bad header"
            chain = hashlib.sha256(b"GHREC-CHAIN-1" + payload).digest()
        elif kind == 0x02:
            assert not flags & 1, "data after the final seal"
            flags = payload[1]
            index, offset = struct.unpack_from("<QQ", payload, 2)
            previous, value, mac = payload[18:50], payload[50:82], payload[82:114]
            assert index == blocks, f"block {index} where block {blocks} was expected"
            assert offset == start, f"block {index}: stream offset {offset}, seal at {start}"
            assert previous == chain, f"block {index}: chain broken"
            assert hashlib.sha256(previous + data[block_start:start]).digest() == value, f"block {index}: altered"
            expected = hmac.new(key, b"GHREC-SEAL-1" + payload[:82], hashlib.sha256).digest()
            assert hmac.compare_digest(expected, mac), f"block {index}: bad signature"
            chain, blocks, block_start = value, blocks + 1, i
        elif kind >= 0x10 or kind == 0x03:
            events += 1
except (AssertionError, IndexError, struct.error) as problem:
    print(f"FAILED after {blocks} blocks: {problem or 'cut short'}")
    sys.exit(1)
print(f"{blocks} blocks, {events} events, " + ("UNSEALED" if not flags & 1 else "recovered" if flags & 2 else "sealed"))
