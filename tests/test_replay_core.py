"""The replay core without sockets: transcript → steps, client bytes in → recorded bytes out."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from simulators.replay.pool import SessionPool
from simulators.replay.script import ReplayError, build
from simulators.replay.session import CLOSE, START_TLS, ReplaySession, Send, wildcard_equal
from transcripts.format import Chunk, Header, Mark, Protocol, Sender, Transcript

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def transcript(protocol: str, *events, redacted: int = 0, label: str = "", **extra) -> Transcript:
    out = []
    for at, sender, data in events:
        out.append(Mark(at, sender, data) if sender in ("starttls", "close") else
                   Chunk(at, Sender(sender), data))
    return Transcript(Header(Protocol(protocol), "x:1", START, redacted=redacted, label=label, extra=extra), out)


IMAP = transcript(
    "imap",
    (0.0, "server", b"* OK ready\r\n"),
    (0.1, "client", b"a1 LOGIN alice \"******\"\r\n"),
    (0.2, "server", b"a1 OK Logged in\r\n"),
    (0.3, "client", b"a2 APPEND INBOX {5}\r\n"),
    (0.4, "server", b"+ go\r\n"),
    (0.5, "client", b"hello\r\n"),
    (0.6, "server", b"a2 OK appended\r\n"),
    (0.7, "client", b"a3 UID FETCH 1 BODY[]\r\na4 NOOP\r\n"),  # pipelined
    (0.8, "server", b"* 1 FETCH (BODY[] {14}\r\na3 OK hidden\r\n)\r\na3 OK done\r\n"),
    (1.9, "server", b"a4 OK noop\r\n"),
    (2.0, "client", b"a5 LOGOUT\r\n"),
    (2.1, "server", b"* BYE bye\r\na5 OK out\r\n"),
    redacted=1,
)


def outputs_bytes(outputs) -> bytes:
    return b"".join(o.data for o in outputs if isinstance(o, Send))


def test_steps_pair_each_unit_with_its_reply_even_when_pipelined():
    script = build(IMAP, "imap.jsonl")
    assert script.greeting.data == b"* OK ready\r\n"
    assert [(s.unit.kind, s.unit.verb, s.reply.data) for s in script.steps] == [
        ("command", "LOGIN", b"a1 OK Logged in\r\n"),
        ("command", "APPEND", b"+ go\r\n"),
        ("continuation", "APPEND", b"a2 OK appended\r\n"),
        # the tagged line inside the literal is message text, not the end of the reply
        ("command", "UID FETCH", b"* 1 FETCH (BODY[] {14}\r\na3 OK hidden\r\n)\r\na3 OK done\r\n"),
        ("command", "NOOP", b"a4 OK noop\r\n"),
        ("command", "LOGOUT", b"* BYE bye\r\na5 OK out\r\n"),
    ]
    assert script.steps[4].reply.pieces[0].delay == pytest.approx(1.2)  # 1.9 − 0.7: the recorded wait
    assert script.steps[-1].reply.then_close and not script.steps[-2].reply.then_close


def test_live_tags_replace_recorded_ones_outside_literals_and_a_masked_secret_matches():
    session = ReplaySession([build(IMAP, "imap.jsonl")])
    assert outputs_bytes(session.start()) == b"* OK ready\r\n"
    out = session.receive_data(b"Z1 LOGIN alice \"secret\"\r\nZ2 APPEND INBOX {5}\r\n")
    assert outputs_bytes(out) == b"Z1 OK Logged in\r\n+ go\r\n"
    out = session.receive_data(b"hello\r\nZ3 UID FETCH 1 BODY[]\r\n")
    assert outputs_bytes(out) == b"Z2 OK appended\r\n* 1 FETCH (BODY[] {14}\r\na3 OK hidden\r\n)\r\nZ3 OK done\r\n"
    out = session.receive_data(b"Z4 NOOP\r\nZ5 LOGOUT\r\n")
    assert outputs_bytes(out) == b"Z4 OK noop\r\n* BYE bye\r\nZ5 OK out\r\n" and out[-1] is CLOSE
    assert (session.matched, session.divergences, session.remaining) == (6, [], 0)


def test_strict_divergence_is_a_tagged_bad_that_names_both_sides_and_hides_the_password():
    session = ReplaySession([build(IMAP, "imap.jsonl")])
    session.start()
    out = session.receive_data(b"Z1 LOGIN bob \"hunter\"\r\n")
    assert outputs_bytes(out) == b"Z1 BAD replay diverged: expected LOGIN alice ..., got LOGIN bob ...\r\n"
    assert [str(d) for d in session.divergences] == ["imap.jsonl, step 1: expected LOGIN alice ..., got LOGIN bob ..."]
    # the next command is compared with the same recorded one
    assert outputs_bytes(session.receive_data(b"Z2 LOGIN alice \"secret\"\r\n")) == b"Z2 OK Logged in\r\n"
    # a secret of another length does not match the mask
    session = ReplaySession([build(IMAP, "imap.jsonl")])
    session.start()
    out = outputs_bytes(session.receive_data(b"Z1 LOGIN alice \"longer-secret\"\r\n"))
    assert out.startswith(b"Z1 BAD replay diverged:") and b"hidden secret differs" in out


def test_lenient_skips_ahead_and_says_what_it_skipped():
    session = ReplaySession([build(IMAP, "imap.jsonl")], lenient=True)
    session.start()
    session.receive_data(b"Z1 LOGIN alice \"secret\"\r\n")
    out = session.receive_data(b"Z9 NOOP\r\n")
    assert outputs_bytes(out) == b"Z9 OK noop\r\n"
    assert [s.steps for s in session.skipped] == [("APPEND INBOX {5}", "hello", "UID FETCH 1 BODY[]")]
    assert session.divergences == []


def test_a_unit_after_the_end_of_the_recording_diverges():
    session = ReplaySession([build(IMAP, "imap.jsonl")], lenient=True)
    session.start()
    session.receive_data(b"Z1 LOGIN alice \"secret\"\r\nZ5 LOGOUT\r\n")
    assert session.done  # the recorded server closed after LOGOUT
    script = build(transcript("imap", (0, "server", b"* OK hi\r\n"), (0.1, "client", b"a CAPABILITY\r\n"),
                              (0.2, "server", b"a OK c\r\n")), "short")
    session = ReplaySession([script])
    session.start()
    session.receive_data(b"b CAPABILITY\r\n")
    assert outputs_bytes(session.receive_data(b"c NOOP\r\n")) == (
        b"c BAD replay diverged: expected the end of the recorded session, got NOOP\r\n")


def test_idle_pushes_arrive_before_done_as_recorded():
    script = build(transcript(
        "imap",
        (0, "server", b"* OK hi\r\n"),
        (0.1, "client", b"t1 IDLE\r\n"),
        (0.2, "server", b"+ idling\r\n"),
        (3.0, "server", b"* 2 EXISTS\r\n"),
        (3.1, "client", b"DONE\r\n"),
        (3.2, "server", b"t1 OK IDLE terminated\r\n"),
    ), "idle")
    session = ReplaySession([script])
    session.start()
    out = session.receive_data(b"q7 IDLE\r\n")
    assert [(o.delay, o.data) for o in out] == [(pytest.approx(0.1), b"+ idling\r\n"),
                                               (pytest.approx(2.9), b"* 2 EXISTS\r\n")]
    assert outputs_bytes(session.receive_data(b"DONE\r\n")) == b"q7 OK IDLE terminated\r\n"


def test_starttls_and_server_close_come_from_the_marks():
    script = build(transcript(
        "pop3",
        (0, "server", b"+OK hi\r\n"),
        (0.1, "client", b"STLS\r\n"),
        (0.2, "server", b"+OK Begin TLS\r\n"),
        (0.2, "starttls", ""),
        (0.3, "client", b"USER a\r\n"),
        (0.4, "server", b"-ERR [SYS/TEMP] gone\r\n"),
        (0.4, "close", "server"),
    ), "pop3")
    session = ReplaySession([script])
    session.start()
    assert session.receive_data(b"STLS\r\n") == [Send(pytest.approx(0.1), b"+OK Begin TLS\r\n"), START_TLS]
    assert session.receive_data(b"USER a\r\n")[-1] is CLOSE


def test_pop3_multiline_replies_and_divergence():
    script = build(transcript(
        "pop3",
        (0, "server", b"+OK hi\r\n"),
        (0.1, "client", b"CAPA\r\nUSER a\r\n"),
        (0.2, "server", b"+OK\r\nTOP\r\nUIDL\r\n.\r\n+OK\r\n"),
        (0.3, "client", b"RETR 1\r\n"),
        (0.4, "server", b"+OK 9 octets\r\nSubject\r\n..x\r\n.\r\n"),
    ), "pop3")
    assert [s.reply.data for s in script.steps] == [b"+OK\r\nTOP\r\nUIDL\r\n.\r\n", b"+OK\r\n",
                                                    b"+OK 9 octets\r\nSubject\r\n..x\r\n.\r\n"]
    session = ReplaySession([script])
    session.start()
    assert outputs_bytes(session.receive_data(b"CAPA\r\nUSER b\r\n")).endswith(
        b"-ERR replay diverged: expected USER a, got USER b\r\n")


def test_smtp_replies_data_and_auth():
    script = build(transcript(
        "smtp",
        (0, "server", b"220 mx ESMTP\r\n"),
        (0.1, "client", b"EHLO me\r\n"),
        (0.2, "server", b"250-mx\r\n250 PIPELINING\r\n"),
        (0.3, "client", b"AUTH LOGIN\r\n"),
        (0.4, "server", b"334 VXNlcm5hbWU6\r\n"),
        (0.5, "client", b"********\r\n"),
        (0.6, "server", b"535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled\r\n"),
        (0.7, "client", b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
        (0.8, "server", b"250 ok\r\n250 ok\r\n354 go\r\n"),
        (0.9, "client", b"Subject: s\r\n\r\nhi\r\n.\r\n"),
        (1.0, "server", b"421 4.7.0 throttled\r\n"),
        redacted=1,
    ), "smtp")
    assert [(s.unit.kind, s.reply.data[:3]) for s in script.steps] == [
        ("command", b"250"), ("command", b"334"), ("continuation", b"535"),
        ("command", b"250"), ("command", b"250"), ("command", b"354"), ("continuation", b"421")]
    assert script.steps[-1].reply.then_close  # 421 ends the session (no marks: the protocol says so)
    session = ReplaySession([script])
    session.start()
    out = session.receive_data(b"EHLO me\r\nAUTH LOGIN\r\nYWxpY2U=\r\nMAIL FROM:<a@x>\r\nRCPT TO:<c@y>\r\n")
    assert outputs_bytes(out).endswith(b"500 replay diverged: expected RCPT TO:<b@y>, got RCPT TO:<c@y>\r\n")


def test_a_pool_pairs_parallel_connections_with_their_recordings_by_content():
    def recording(folder: bytes) -> Transcript:
        return transcript("imap", (0, "server", b"* OK hi\r\n"), (0.1, "client", b"a1 SELECT " + folder + b"\r\n"),
                          (0.2, "server", b"* 3 EXISTS\r\na1 OK " + folder + b"\r\n"))
    pool = SessionPool([build(recording(b"INBOX"), "1"), build(recording(b"Sent"), "2")])
    first, second = pool.open(), pool.open()  # both connected before either said anything
    first.start(), second.start()
    assert outputs_bytes(second.receive_data(b"x SELECT INBOX\r\n")) == b"* 3 EXISTS\r\nx OK INBOX\r\n"
    assert outputs_bytes(first.receive_data(b"y SELECT Sent\r\n")) == b"* 3 EXISTS\r\ny OK Sent\r\n"
    first.closed(), second.closed()
    summary = pool.summary()
    assert (pool.finished, summary.sessions, summary.matched, summary.unused) == (True, 2, 2, [])
    assert pool.open().start() == [CLOSE]  # a connection more than recorded
    assert pool.summary().divergences[0].got == "one connection more than recorded"


def test_untimed_logs_are_paired_by_the_protocol():
    script = build(transcript("imap", (0, "server", b"* OK hi\r\nA OK in\r\n* 1 EXISTS\r\nB OK sel\r\n"),
                              (0, "client", b"A LOGIN u ****\r\nB SELECT INBOX\r\n"), interleaved=False), "untimed")
    assert script.greeting.data == b"* OK hi\r\n"
    assert [s.reply.data for s in script.steps] == [b"A OK in\r\n", b"* 1 EXISTS\r\nB OK sel\r\n"]


def test_lmtp_is_refused_by_name():
    with pytest.raises(ReplayError, match="x.jsonl: lmtp sessions cannot be replayed yet"):
        build(transcript("lmtp", (0, "client", b"LHLO x\r\n")), "x.jsonl")


def test_wildcards_only_in_redacted_recordings_and_never_across_lines():
    assert wildcard_equal(b"PASS ****\r\n", b"PASS abcd\r\n", True)
    assert not wildcard_equal(b"PASS ****\r\n", b"PASS abcd\r\n", False)
    assert not wildcard_equal(b"PASS ****\r\n", b"PASS ab\r\n\r\n", True)
    assert not wildcard_equal(b"PASS ****\r\n", b"PASS abcde\r\n", True)
