"""The IMAP command reader and tokenizer: bytes in, events out — whole, byte by byte, pipelined."""

import pytest

from simulators.imap.syntax import (
    BadCommand,
    Command,
    CommandReader,
    ContinuationLine,
    ImapSyntaxError,
    LARGE_LITERAL,
    NeedContinuation,
    RefusedCommand,
    astring,
    parse_fetch_atts,
    parse_sequence_set,
    tokenize,
)

CASES = [
    (b"a1 NOOP\r\n", [Command("a1", "NOOP", [])]),
    (b"a2 login alice \"s e\\\"c\"\r\n", [Command("a2", "LOGIN", ["alice", b's e"c'])]),
    (
        b"a3 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]<0.100>)\r\n",
        [Command("a3", "UID FETCH", ["1:*", ["FLAGS", "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]<0.100>"]])],
    ),
    (
        b"a4 LOGIN {5}\r\nalice pw\r\n",
        [NeedContinuation(5, b"a4 LOGIN {5}\r\n"), Command("a4", "LOGIN", [b"alice", "pw"])],
    ),
    (
        b"a5 APPEND INBOX (\\Seen) \" 1-Jan-2024 10:00:00 +0200\" {4+}\r\nab\r\n\r\n",
        [Command("a5", "APPEND", ["INBOX", ["\\Seen"], b" 1-Jan-2024 10:00:00 +0200", b"ab\r\n"])],
    ),
    (b"a6 SEARCH NOT (FLAGGED SEEN) NIL\r\n", [Command("a6", "SEARCH", ["NOT", ["FLAGGED", "SEEN"], "NIL"])]),
    (b"a7 FETCH 1 (FLAGS\r\n", [BadCommand("a7", "Error in IMAP command FETCH: Missing ')'")]),
    (b"a8 LOGIN \"open\r\n", [BadCommand("a8", "Error in IMAP command LOGIN: Missing '\"'")]),
    (b"\r\n", [BadCommand("*", "Error in IMAP command received by server.")]),
    (b"a9\r\n", [BadCommand("a9", "Error in IMAP command: Invalid command name")]),
    (b"b1 LIST \"\" *\r\nb2 NOOP\r\n", [Command("b1", "LIST", [b"", "*"]), Command("b2", "NOOP", [])]),
]


def _feed(chunks, *, then_idle: bool = False) -> list:
    reader = CommandReader()
    events = []
    for chunk in chunks:
        reader.receive_data(chunk)
        while (event := reader.next_event()) is not None:
            events.append(event)
    assert reader.idle or not then_idle  # nothing of a command left pending after the last one
    return events


@pytest.mark.parametrize("data,expected", CASES)
def test_reader_whole_and_byte_by_byte(data, expected):
    assert _feed([data]) == expected
    assert _feed([data[i : i + 1] for i in range(len(data))]) == expected


@pytest.mark.parametrize("data,expected", CASES)
def test_reader_with_trailing_data(data, expected):
    events = _feed([data + b"z9 NOOP\r\nz10 CAP"])
    assert events == expected + [Command("z9", "NOOP", [])]


def test_continuation_announced_once_while_the_literal_arrives_in_pieces():
    reader = CommandReader()
    reader.receive_data(b"t1 APPEND INBOX {10}\r\n")
    assert reader.next_event() == NeedContinuation(10, b"t1 APPEND INBOX {10}\r\n")
    for piece in (b"0123", b"456", b"789"):
        reader.receive_data(piece)
        assert reader.next_event() is None
    reader.receive_data(b"\r\n")
    assert reader.next_event() == Command("t1", "APPEND", ["INBOX", b"0123456789"])


def test_literal_pieces_make_one_command():
    events = _feed([b"t1 APPEND INBOX {10}\r\n", b"0123", b"456", b"789", b"\r\n"])
    assert events == [NeedContinuation(10, b"t1 APPEND INBOX {10}\r\n"), Command("t1", "APPEND", ["INBOX", b"0123456789"])]


# Large literals (syntax.LARGE_LITERAL): received apart, into a buffer of their own size.
BIG = bytes(range(256)) * (LARGE_LITERAL // 256 + 3)  # just over the threshold, every byte value


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_a_large_literal_plus_multiappend_frames_alike_whole_and_in_odd_pieces():
    data = (b"a1 APPEND INBOX (\\Seen) {%d+}\r\n" % len(BIG) + BIG
            + b" {%d+}\r\n" % len(BIG) + BIG[::-1] + b" {3+}\r\nabc\r\na2 NOOP\r\n")
    want = [Command("a1", "APPEND", ["INBOX", ["\\Seen"], BIG, BIG[::-1], b"abc"]), Command("a2", "NOOP", [])]
    for size in (len(data), 65536, 7777, 1000):
        events = _feed(_pieces(data, size), then_idle=True)
        assert events == want, size
        big, reversed_big, small = events[0].args[2:]
        # The message as received, not a copy of a copy: a bytearray only for large literals.
        assert (type(big), type(reversed_big), type(small)) == (bytearray, bytearray, bytes)


def test_a_synchronising_large_literal_is_announced_once_then_filled():
    head = b"t1 APPEND INBOX {%d}\r\n" % len(BIG)
    reader = CommandReader()
    reader.receive_data(head)
    assert reader.next_event() == NeedContinuation(len(BIG), head)
    for piece in _pieces(BIG, 65536):
        reader.receive_data(piece)
        assert reader.next_event() is None and not reader.idle
    reader.receive_data(b"\r\nt2 NOOP\r\n")
    assert reader.next_event() == Command("t1", "APPEND", ["INBOX", BIG])
    assert reader.next_event() == Command("t2", "NOOP", []) and reader.idle


def test_a_large_literal_outside_append_is_plain_bytes():
    (event,) = _feed([b"l1 LOGIN {%d+}\r\n" % len(BIG) + BIG + b" pw\r\n"], then_idle=True)
    assert event == Command("l1", "LOGIN", [BIG, "pw"]) and type(event.args[0]) is bytes


def test_expect_line_reads_a_continuation_not_a_command():
    reader = CommandReader()
    reader.receive_data(b"i1 IDLE\r\nDONE\r\ni2 NOOP\r\n")
    assert reader.next_event() == Command("i1", "IDLE", [])
    reader.expect_line()
    assert reader.next_event() == ContinuationLine(b"DONE")
    assert reader.next_event() == Command("i2", "NOOP", [])


def test_literal_policy_refuses_before_the_literal_and_skips_a_literal_plus():
    reader = CommandReader(literal_policy=lambda prefix, size: "NO [TOOBIG] too big" if size > 5 else None)
    reader.receive_data(b"t1 APPEND INBOX {10}\r\nt2 APPEND INBOX {10+}\r\n0123456789\r\nt3 NOOP\r\n")
    assert reader.next_event() == RefusedCommand("t1", "NO [TOOBIG] too big")
    assert reader.next_event() == RefusedCommand("t2", "NO [TOOBIG] too big")
    assert reader.next_event() == Command("t3", "NOOP", [])


def test_overlong_line_is_refused_and_the_reader_recovers():
    reader = CommandReader(max_line=100)
    reader.receive_data(b"x1 NOOP " + b"a" * 200)
    assert reader.next_event() == BadCommand("x1", "Error in IMAP command: Too long argument.")
    reader.receive_data(b"aaa\r\nx2 NOOP\r\n")
    assert reader.next_event() == Command("x2", "NOOP", [])


def test_literal_over_the_limit_is_refused():
    reader = CommandReader(max_literal=10)
    reader.receive_data(b"x1 APPEND INBOX {11}\r\nx2 NOOP\r\n")
    assert reader.next_event() == BadCommand("x1", "Literal too large (11 bytes).")
    assert reader.next_event() == Command("x2", "NOOP", [])


def test_fetch_attributes():
    atts = parse_fetch_atts(["UID", "body.peek[1.2.header.fields (subject \"X-A\")]<5.10>", "BODY[]", "RFC822.SIZE"])
    assert [a.name for a in atts] == ["UID", "BODY.PEEK", "BODY", "RFC822.SIZE"]
    peek = atts[1]
    assert (peek.part, peek.text, peek.fields, peek.partial) == ((1, 2), "HEADER.FIELDS", ("SUBJECT", "X-A"), (5, 10))
    assert peek.peek and peek.reply_name() == "BODY[1.2.HEADER.FIELDS (SUBJECT X-A)]<5>"
    assert atts[2].reply_name() == "BODY[]" and not atts[2].peek
    assert [a.name for a in parse_fetch_atts("fast")] == ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]


@pytest.mark.parametrize("bad", ["BODY[HEADER.FIELDS]", "BODY[TEXT.FOO]", "BODY[MIME]", "FOO", "BODY[]<1>"])
def test_bad_fetch_attributes(bad):
    with pytest.raises(ImapSyntaxError):
        parse_fetch_atts([bad])


def test_sequence_sets():
    assert parse_sequence_set("1:3,5,7:*", 9) == [(1, 3), (5, 5), (7, 9)]
    assert parse_sequence_set("*:4", 2) == [(2, 4)]
    for bad in ("", "0", "1:x", "a"):
        with pytest.raises(ImapSyntaxError):
            parse_sequence_set(bad, 5)


def test_tokenize_literal_inside_list_and_quoting_output():
    assert tokenize(b'X ("a" {3}\r\nb\r\n NIL)') == ["X", [b"a", b"b\r\n", "NIL"]]
    assert astring('a "q" \\') == b'"a \\"q\\" \\\\"'
    assert astring(b"line\r\nbreak") == b"{11}\r\nline\r\nbreak"
