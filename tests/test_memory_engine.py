"""Memory and scale, engine side: a 20 MB message migrates without the engine holding copies of it,
and APPEND literals are written from the fetched bytes."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from migrator.budget import ByteBudget
from migrator.engine import MigrationOptions
from migrator.imapconn import quiet_protocol_log
from migrator.sinks.imap import GATHER_BYTES, SEND_DIRECT_BYTES, AppendItem, _append_arguments, send_pieces
from scenarios.peak_rss import migrate_in_child
from simulators.fixtures.bulk import huge_message
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import INBOX, Store

PASSWORD = "pw-memory"
SIZE = 20_000_000
WHEN = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)


def test_a_20mb_message_grows_the_engine_by_less_than_four_times_its_size(tmp_path):
    store = Store(body_dir=tmp_path / "bodies")
    raw = huge_message(SIZE, attachments=4)
    store.add_account("src", PASSWORD).append(INBOX, raw, flags={"\\Seen"}, internaldate=WHEN)
    store.add_account("dst", PASSWORD)
    with SimulatorWorld(store, load_profile("generic")) as world:
        url = f"imap://{{}}@127.0.0.1:{world.start_imap().port}?starttls=no"
        options = MigrationOptions(state_path=tmp_path / "state.sqlite")
        run = migrate_in_child(url.format("src"), url.format("dst"), PASSWORD, options.model_dump_json(), timeout=120)
    (copy,) = store.account("dst").folder(INBOX).messages
    assert (run.copied, run.failed, copy.raw, copy.internaldate) == (1, 0, raw, WHEN)
    # Measured 1.0x (one fetched copy); before the fix 2.9x (imaplib's repr trace, joined APPENDs).
    assert run.growth_kib * 1024 < 4 * SIZE, f"engine grew {run.growth_kib / 1024:.0f} MiB for a 20 MB message"
    store.close()


def test_send_pieces_gathers_small_pieces_and_writes_a_large_literal_as_is():
    sent: list[bytes] = []
    big = b"x" * SEND_DIRECT_BYTES
    head, body = _append_arguments(AppendItem(big, ["\\Seen"], WHEN))
    assert head == b'(\\Seen) "06-Jan-2025 09:00:00 +0000" {262144+}\r\n' and body is big
    send_pieces(sent.append, [b"a1 APPEND INBOX ", head, body, b"\r\n", b"a2 APPEND INBOX {1+}\r\n", b"y", b"\r\n"])
    assert sent == [b"a1 APPEND INBOX " + head, big, b"\r\na2 APPEND INBOX {1+}\r\ny\r\n"]
    assert sent[1] is big  # not copied


def test_send_pieces_keeps_a_batch_of_small_messages_in_few_writes():
    sent: list[bytes] = []
    pieces = [b"m" * 10_000] * 1000  # 10 MB in small pieces
    send_pieces(sent.append, pieces)
    assert b"".join(sent) == b"".join(pieces)
    assert len(sent) == -(-10_000_000 // GATHER_BYTES) and all(len(s) >= GATHER_BYTES for s in sent[:-1])


def test_byte_budget_holds_read_ahead_within_the_limit_but_lets_one_huge_batch_through():
    budget = ByteBudget(100)
    assert budget.try_take(60) and not budget.try_take(50)  # no read-ahead past the limit
    assert budget.try_take(40) and budget.held == 100
    budget.give(60)
    budget.give(40)
    assert budget.take(500, timeout=0.1) and budget.held == 500  # alone, a batch over the limit goes
    assert not budget.try_take(1) and not budget.take(1, timeout=0.05)
    released = threading.Timer(0.05, budget.give, args=(500,))
    released.start()
    assert budget.take(30, timeout=5)  # waits for the huge batch to be written
    assert (budget.held, budget.peak) == (30, 500)
    with pytest.raises(AssertionError, match="more than taken"):
        budget.give(31)


def test_imaplib_trace_is_off_unless_its_logger_listens():
    logger = logging.getLogger("imapclient.imaplib")
    quiet, traced = SimpleNamespace(_imap=SimpleNamespace(debug=5)), SimpleNamespace(_imap=SimpleNamespace(debug=5))
    quiet_protocol_log(quiet)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        quiet_protocol_log(traced)
    finally:
        logger.setLevel(old)
    assert (quiet._imap.debug, traced._imap.debug) == (0, 5)
