"""Memory, simulator side: a large APPEND literal is received once (straight into a buffer of its
size; the reader's framing is tested in test_imap_syntax.py), a large FETCH literal is written
from the stored bytes without copying them into the line, and the adapter writes it a slice at a
time (the transport never joins it with what it holds)."""

from __future__ import annotations

import tracemalloc
from types import SimpleNamespace

from simulators.imap.engine import ImapSession
from simulators.imap.server import _StreamProducer
from simulators.profiles import load_profile
from simulators.store import INBOX, Store

def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


SIZE = 4_000_000


def _logged_in(store: Store) -> ImapSession:
    session = ImapSession(store, load_profile("generic"))
    session.start()
    session.receive_data(b"a LOGIN u pw\r\nb SELECT INBOX\r\n")
    return session


def _peak(fn) -> tuple[int, object]:
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        result = fn()
        return tracemalloc.get_traced_memory()[1] - base, result
    finally:
        tracemalloc.stop()


def test_append_and_fetch_of_a_large_message_hold_it_about_once(tmp_path):
    store = Store(body_dir=tmp_path)
    store.add_account("u", "pw")
    raw = (b"Subject: big\r\n\r\n" + b"0123456789abcdef" * (SIZE // 16))[:SIZE]
    session = _logged_in(store)

    def append():
        out = session.receive_data(b"c APPEND INBOX {%d+}\r\n" % len(raw))
        for at in range(0, len(raw), 65536):  # as the socket delivers it, one piece at a time
            out += session.receive_data(raw[at : at + 65536])
        return out + session.receive_data(b"\r\n")

    peak, out = _peak(append)
    assert out[-1].startswith(b"c OK [APPENDUID ")
    assert store.account("u").folder(INBOX).messages[0].raw == raw
    # Before: the read buffer, the framed command, its line, its arguments and the literal: ~4x.
    assert peak < 1.3 * SIZE, f"APPEND of {SIZE} bytes peaked at +{peak / SIZE:.2f}x"

    peak, out = _peak(lambda: session.receive_data(b"d UID FETCH 1 (BODY.PEEK[])\r\n"))
    reply = b"".join(out)
    assert reply.startswith(b"* 1 FETCH (UID 1 BODY[] {%d}\r\n" % SIZE + raw + b")\r\nd OK Fetch completed")
    assert any(len(o) == SIZE for o in out)  # the literal is an output of its own, as read
    assert peak < 1.3 * SIZE, f"FETCH of {SIZE} bytes peaked at +{peak / SIZE:.2f}x"  # before: ~3x
    store.close()


def test_the_adapter_writes_a_large_output_a_slice_at_a_time():
    writes, done = [], []
    proto = SimpleNamespace(transport=SimpleNamespace(write=writes.append), _stream_done=lambda: done.append(1),
                            factory=SimpleNamespace(clock=None))
    chunk = _StreamProducer.CHUNK
    big = bytes(range(256)) * (chunk * 3 // 256 + 1)
    producer = _StreamProducer(proto, iter([b"head ", big, b" tail", b"more"]))
    while not done:
        producer.resumeProducing()
    assert b"".join(writes) == b"head " + big + b" tail" + b"more"
    assert max(map(len, writes)) <= chunk and len(writes) >= 4 and done == [1]
