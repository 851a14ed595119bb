"""Huffman coding of quantization indices, from their real frequencies.

Code lengths come from the textbook merge of the two rarest subtrees (heapq), the codes
are canonical (so a decoder needs only the lengths), and the encoder writes the real bit
stream: byte counts are the length of that stream, not an entropy estimate. With two
symbols or more the lengths satisfy Kraft's inequality with equality; a lone symbol gets
one bit.
"""

from __future__ import annotations

import heapq
import itertools

import numpy as np


def code_lengths(freqs: dict[int, int]) -> dict[int, int]:
    """Huffman code length of every symbol with a positive count."""
    live = {s: int(f) for s, f in freqs.items() if f > 0}
    if not live:
        return {}
    if len(live) == 1:
        return {next(iter(live)): 1}
    tie = itertools.count()  # equal weights: merge in a fixed order
    heap = [(f, next(tie), [s]) for s, f in sorted(live.items())]
    heapq.heapify(heap)
    depth = dict.fromkeys(live, 0)
    while len(heap) > 1:
        fa, _, a = heapq.heappop(heap)
        fb, _, b = heapq.heappop(heap)
        for s in a + b:
            depth[s] += 1
        heapq.heappush(heap, (fa + fb, next(tie), a + b))
    return depth


def canonical_codes(lengths: dict[int, int]) -> dict[int, int]:
    """Canonical codes (as integers of `lengths[s]` bits): by length, then symbol."""
    codes, code, prev = {}, 0, 0
    for s, n in sorted(lengths.items(), key=lambda kv: (kv[1], kv[0])):
        code <<= n - prev
        codes[s], code, prev = code, code + 1, n
    return codes


def frequencies(symbols: np.ndarray) -> dict[int, int]:
    flat = np.asarray(symbols).ravel()
    if flat.size and flat.min() >= 0 and flat.max() < 1 << 16:  # indices: O(n) counting
        counts = np.bincount(flat)
        return {int(v): int(counts[v]) for v in np.flatnonzero(counts)}
    values, counts = np.unique(flat, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts, strict=True)}


def encoded_bits(symbols: np.ndarray) -> int:
    """Bits of the Huffman-coded stream of `symbols` (sum of count x code length)."""
    freqs = frequencies(symbols)
    lengths = code_lengths(freqs)
    return sum(freqs[s] * lengths[s] for s in freqs)


def encoded_bytes(symbols: np.ndarray) -> int:
    """Bytes of the stream encode() writes (the last byte zero-padded)."""
    return -(-encoded_bits(symbols) // 8)


def encode(symbols: np.ndarray) -> tuple[bytes, dict[int, int]]:
    """The packed bit stream (most significant bit first) and the code lengths."""
    sym = np.asarray(symbols, dtype=np.int64).ravel()
    lengths = code_lengths(frequencies(sym))
    if not lengths:
        return b"", {}
    codes = canonical_codes(lengths)
    table_len = np.zeros(max(codes) + 1, dtype=np.int64)
    table_code = np.zeros(max(codes) + 1, dtype=np.int64)
    for s, n in lengths.items():
        table_len[s], table_code[s] = n, codes[s]
    lens, code = table_len[sym], table_code[sym]
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    bits = np.zeros(int(lens.sum()), dtype=np.uint8)
    for j in range(max(lengths.values())):  # bit j of every code at once
        has = lens > j
        bits[starts[has] + j] = (code[has] >> (lens[has] - 1 - j)) & 1
    return np.packbits(bits).tobytes(), lengths


def decode(stream: bytes, lengths: dict[int, int], count: int) -> np.ndarray:
    """The `count` symbols encode() wrote into `stream` with these code lengths."""
    codes = canonical_codes(lengths)
    lookup = {(lengths[s], c): s for s, c in codes.items()}
    bits = np.unpackbits(np.frombuffer(stream, dtype=np.uint8))
    out = np.empty(count, dtype=np.int64)
    pos = 0
    for i in range(count):
        code, n = 0, 0
        while True:
            code, n, pos = (code << 1) | int(bits[pos]), n + 1, pos + 1
            s = lookup.get((n, code))
            if s is not None:
                out[i] = s
                break
    return out
