"""Malformed replies and raw UTF-8 names: the migrator's readers, pure (bytes in, values out) and
against the simulator's quirks on a real socket."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from migrator.fetch_parser import parse_fetch
from migrator.folders import ListEntry
from migrator.list_reply import decode_name, parse_line, parse_list
from migrator.sources.imap import ImapSource
from migrator.urls import Endpoint, Secret, ServerURL
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.quirks import QuirkSpec
from simulators.store import Store

WHEN = datetime(2024, 3, 1, 8, 0, tzinfo=timezone.utc)
RAW = [b"Subject: m%d\r\nMessage-ID: <m%d@x>\r\n\r\nbody %d\r\n" % (i, i, i) for i in range(1, 4)]


# Pure -------------------------------------------------------------------------------------------


def test_list_line_names_in_every_spelling():
    assert parse_line(b'(\\HasNoChildren) "/" Entw&APw-rfe')[0] == ListEntry("Entwürfe", frozenset({"\\HasNoChildren"}), "/")
    assert parse_line('() "/" "Entwürfe"'.encode())[0].name == "Entwürfe"  # raw UTF-8
    assert parse_line(b'() "\\\\" "Work\\\\2024"')[0] == ListEntry("Work\\2024", frozenset(), "\\")
    assert parse_line(b"() NIL Flat")[0] == ListEntry("Flat", frozenset(), None)
    assert parse_line(b'() "/" {8}', b"Old Mail")[0].name == "Old Mail"
    assert decode_name(b"a&b") == "a&b"  # no valid mUTF-7: kept as it stands


def test_list_line_missing_quote_is_read_and_reported_and_nonsense_is_left_out():
    entry, problem = parse_line(b'(\\HasNoChildren) "/" "Old Mail')
    assert entry.name == "Old Mail" and problem.name == "Old Mail"
    assert "closing quote missing" in str(problem) and "'Old Mail'" in str(problem)
    entries, problems = parse_list([b'() "/" NIL', b"garbage", b'() "/" INBOX', None])
    assert [e.name for e in entries] == ["INBOX"]
    assert [p.cause for p in problems] == [
        "NIL or empty where a mailbox name is required: line left out", "no attribute list: line left out"]


def test_fetch_reader_leaves_an_unrequested_literal_to_imapclient_and_reads_nil_as_unknown():
    data = [(b"1 (UID 7 RFC822.SIZE 9 BODY[] {9}", b"Subject:\r"), (b" X-SPAM-REPORT {17}", b"score=7.5 (spam?)"), b")"]
    assert parse_fetch(data) is None  # a second literal: imapclient's complete parser takes it
    assert parse_fetch([b"2 (UID 2 INTERNALDATE NIL RFC822.SIZE 40)"]) == {2: {b"UID": 2, b"RFC822.SIZE": 40}}


# On a real socket -------------------------------------------------------------------------------


@pytest.fixture
def source():
    """A generic simulator with INBOX (3 messages), "Old Mail" and "Entwürfe"; call with quirks."""
    worlds = []

    def start(*quirks: str) -> ImapSource:
        store = Store()
        acc = store.add_account("alice", "pw")
        for path in [("Old Mail",), ("Entwürfe",)]:
            acc.create_folder(path)
        for raw in RAW:
            acc.append(("INBOX",), raw, internaldate=WHEN)
        profile = load_profile("generic").with_quirks([QuirkSpec.parse(q) for q in quirks])
        world = SimulatorWorld(store, profile)
        worlds.append(world)
        handle = world.start_imap()
        return ImapSource(Endpoint(ServerURL.parse(handle.url("alice") + "?starttls=no"), Secret("pw")))

    yield start
    for w in worlds:
        w.stop()


def test_missing_quote_in_list_is_read_leniently_and_reported(source):
    src = source("malformed-responses:kind=list-missing-quote,folder=Old Mail")
    entries, _ns = src.folders()
    assert {e.name for e in entries} == {"INBOX", "Old Mail", "Entwürfe"}
    assert len(src.list_problems) == 1 and "folder 'Old Mail': closing quote missing" in src.list_problems[0]
    src.close()


def test_raw_utf8_names_are_decoded_and_the_folder_can_be_examined(source):
    src = source("modified-utf7-names")
    entries, _ns = src.folders()
    assert "Entwürfe" in {e.name for e in entries} and not src.list_problems
    src.examine("Entwürfe")  # sent back as modified UTF-7, which the server also takes
    assert src.exists == 0
    src.close()


def test_empty_status_lists_count_as_unknown_not_as_a_failure(source):
    src = source("malformed-responses:kind=empty-status,folder=INBOX")
    assert src.message_counts(["INBOX", "Old Mail"]) == {"INBOX": 0, "Old Mail": 0}
    assert src.sizes("INBOX") == {1: len(RAW[0]), 2: len(RAW[1]), 3: len(RAW[2])}  # the truth comes from FETCH
    src.close()


def test_nil_internaldate_reads_as_unknown_for_that_message_only(source):
    src = source("malformed-responses:kind=nil-string,uid=2")
    got = {m.uid: m for m in src.fetch("INBOX", [1, 2, 3])}
    assert got[2].internaldate is None and got[2].raw == RAW[1]
    assert got[1].internaldate == WHEN and got[3].internaldate == WHEN
    src.close()


def test_unrequested_fetch_item_with_a_literal_changes_nothing(source):
    src = source("malformed-responses:kind=fetch-extra-item")
    assert src.sizes("INBOX") == {1: len(RAW[0]), 2: len(RAW[1]), 3: len(RAW[2])}
    assert [m.raw for m in src.fetch("INBOX", [1, 2, 3])] == RAW
    src.close()
