"""Hypothesis strategies that break valid protocol bytes the way real peers and attackers do.

``mutated(seeds)`` starts from a valid command, reply or message and applies a few mutations:
truncation, byte flips, inserted protocol specials (NUL, 8-bit, CR/LF, parens, quotes, braces,
brackets), a number swapped for a huge or zero one, a literal ``{n}`` whose length lies, a slice
deleted or repeated, a splice with another seed, and an overlong line. ``garbage(seeds)`` mixes
those with plain random bytes. Hypothesis shrinks any failure to a minimal mutation.
"""

from __future__ import annotations

import re

from hypothesis import strategies as st

SPECIALS = [
    b"\x00", b"\xff", b"\x80", b"\xc3\xa4", b"\r", b"\n", b"\r\n", b" ", b"(", b")", b'"', b"\\",
    b"{", b"}", b"[", b"]", b"<", b">", b"*", b"%", b":", b",", b";", b"=", b"+", b".", b"-", b"\t",
]
HUGE_NUMBERS = [
    b"0", b"-1", b"00000000001", b"4294967295", b"4294967296", b"18446744073709551616",
    b"9" * 20, b"9" * 400, b"9" * 5000,
]
_NUMBER = re.compile(rb"\d+")
_LITERAL = re.compile(rb"\{(\d+)(\+?)\}")


def _truncate(draw, data: bytearray, seeds) -> bytearray:
    return data[: draw(st.integers(0, len(data)))]


def _flip(draw, data: bytearray, seeds) -> bytearray:
    if data:
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    return data


def _insert(draw, data: bytearray, seeds) -> bytearray:
    i = draw(st.integers(0, len(data)))
    piece = draw(st.sampled_from(SPECIALS) | st.binary(min_size=1, max_size=8))
    return data[:i] + piece + data[i:]


def _delete(draw, data: bytearray, seeds) -> bytearray:
    i = draw(st.integers(0, len(data)))
    j = draw(st.integers(i, min(len(data), i + 16)))
    return data[:i] + data[j:]


def _repeat(draw, data: bytearray, seeds) -> bytearray:
    i = draw(st.integers(0, len(data)))
    j = draw(st.integers(i, min(len(data), i + 16)))
    return data[:j] + data[i:j] * draw(st.integers(1, 4)) + data[j:]


def _huge_number(draw, data: bytearray, seeds) -> bytearray:
    spots = list(_NUMBER.finditer(data))
    if not spots:
        return data
    m = draw(st.sampled_from(spots))
    return data[: m.start()] + draw(st.sampled_from(HUGE_NUMBERS)) + data[m.end() :]


def _literal_lie(draw, data: bytearray, seeds) -> bytearray:
    spots = list(_LITERAL.finditer(data))
    if not spots:
        return data
    m = draw(st.sampled_from(spots))
    # [-12:]: a number another mutation made huge is past int()'s 4300-digit limit
    size = max(0, int(m.group(1)[-12:]) + draw(st.sampled_from([-3, -1, 1, 2, 100])))
    return data[: m.start()] + b"{%d%s}" % (size, m.group(2)) + data[m.end() :]


def _splice(draw, data: bytearray, seeds) -> bytearray:
    other = draw(st.sampled_from(seeds))
    return data[: draw(st.integers(0, len(data)))] + other[draw(st.integers(0, len(other))) :]


def _long_line(draw, data: bytearray, seeds) -> bytearray:
    i = draw(st.integers(0, len(data)))
    return data[:i] + draw(st.sampled_from([b"x", b"A", b"9", b" ", b"("])) * draw(st.sampled_from([1000, 10_000])) + data[i:]


MUTATIONS = [_truncate, _flip, _insert, _delete, _repeat, _huge_number, _literal_lie, _splice, _long_line]


@st.composite
def mutated(draw, seeds: list[bytes], max_mutations: int = 3) -> bytes:
    """A seed with 0..max_mutations mutations (0 keeps valid inputs in the mix)."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, max_mutations))):
        data = draw(st.sampled_from(MUTATIONS))(draw, data, seeds)
    return bytes(data)


def garbage(seeds: list[bytes], max_mutations: int = 3) -> st.SearchStrategy[bytes]:
    """Mostly mutated seeds, sometimes random bytes."""
    return st.one_of(mutated(seeds, max_mutations), mutated(seeds, max_mutations), st.binary(max_size=300))


def lines(seeds: list[bytes], max_mutations: int = 3) -> st.SearchStrategy[bytes]:
    """One command line: garbage with the protocol's CRLF end (an inner LF may split it)."""
    return garbage(seeds, max_mutations).map(lambda b: b.rstrip(b"\r\n") + b"\r\n")


def text(seeds: list[bytes], max_mutations: int = 3) -> st.SearchStrategy[str]:
    """Garbage as text, for pure functions that take ``str`` (latin-1: every byte a character)."""
    return st.one_of(garbage(seeds, max_mutations).map(lambda b: b.decode("latin-1")), st.text(max_size=200))
