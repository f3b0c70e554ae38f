"""The engine's pieces for Microsoft destinations: long lines (pure), receipts asked, ignored
capabilities, and the verifier's notes for unstorable flags and $MDNSent."""

from __future__ import annotations

import email
from datetime import datetime, timezone

from migrator.longlines import longest_line, rewrap
from migrator.receipts import asks_receipt
from migrator.sources.imap import ImapSource
from migrator.urls import Endpoint, Secret, ServerURL
from scenarios.snapshot import FolderSnapshot, MailboxSnapshot, record_of
from scenarios.verify import compare
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.quirks import QuirkSpec
from simulators.store import Store

LONG = b"y" * 12000
PLAIN = b"From: a@x\r\nSubject: s\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\n\r\nhi\r\n" + LONG + b"\r\nbye\r\n"
WHEN = datetime(2024, 3, 1, tzinfo=timezone.utc)


def test_longest_line_counts_bytes_without_the_line_end():
    assert longest_line(b"ab\r\nabcd\r\n") == 4 and longest_line(b"abc\nab") == 3 and longest_line(b"") == 0


def test_rewrap_reencodes_only_the_long_part_and_keeps_its_content():
    multipart = (
        b'From: a@x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nshort\r\n"
        b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + LONG + b"\r\n--b--\r\n"
    )
    out = rewrap(multipart, 9900)
    assert out is not None and longest_line(out) <= 76
    parts = [p for p in email.message_from_bytes(out).walk() if not p.is_multipart()]
    assert [p.get("Content-Transfer-Encoding") for p in parts] == [None, "quoted-printable"]
    assert b"--b\r\nContent-Type: text/plain\r\n\r\nshort\r\n--b\r\n" in out  # untouched
    assert parts[1].get_payload(decode=True).rstrip(b"\r\n") == LONG
    assert out.startswith(b'From: a@x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n')


def test_rewrap_gives_up_on_what_it_cannot_fix():
    assert rewrap(b"Subject: " + LONG + b"\r\n\r\nbody\r\n", 9900) is None  # a header line
    b64 = b"Content-Transfer-Encoding: base64\r\n\r\n" + b"QUJD" * 3000 + b"\r\n"
    assert rewrap(b64, 9900) is None  # an encoded part's own lines are not ours to re-fold
    assert rewrap(PLAIN, 20000) is None  # nothing too long: nothing to repair
    binary = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n" + LONG + b"\r\n"
    assert rewrap(binary, 9900) is None  # its line ends are data


def test_a_receipt_is_asked_by_read_unmarked_messages_only():
    raw = b"Subject: s\r\nDisposition-Notification-To: a@x\r\n\r\nDisposition-Notification-To: in the body\r\n"
    assert asks_receipt(raw, ["\\Seen"])
    assert not asks_receipt(raw, [])  # unread: the receipt is still due when the user reads it
    assert not asks_receipt(raw, ["\\Seen", "$mdnsent"])
    assert not asks_receipt(b"Subject: s\r\n\r\nDisposition-Notification-To: a@x\r\n", ["\\Seen"])


def test_ignored_capabilities_are_invisible_to_the_engine():
    store = Store()
    store.add_account("alice", "pw")
    with SimulatorWorld(store, load_profile("m365")) as world:
        handle = world.start_imap()
        url = ServerURL.parse(handle.url("alice") + "?starttls=no")
        plain = ImapSource(Endpoint(url, Secret("pw")))
        hidden = ImapSource(Endpoint(url, Secret("pw"), ignore_capabilities=frozenset({"MOVE", "APPENDLIMIT"})))
        try:
            assert plain.client.has_capability("MOVE")
            assert not hidden.client.has_capability("MOVE") and hidden.client.has_capability("UIDPLUS")
            assert not any(c.startswith(b"APPENDLIMIT") for c in hidden.client.capabilities())
        finally:
            plain.close()
            hidden.close()


def _snap(flags: set[str], raw: bytes, permanent: list[str] | None = None) -> MailboxSnapshot:
    folder = FolderSnapshot(path=("INBOX",), name="INBOX", messages=[record_of(1, raw, flags, WHEN)],
                            permanent_flags=permanent)
    return MailboxSnapshot(label="x", folders={"INBOX": folder})


def test_verifier_notes_flags_the_destination_cannot_store_but_judges_the_rest():
    raw = b"Message-ID: <a@x>\r\n\r\nbody\r\n"
    src = _snap({"\\Seen", "\\Indexed", "$NotJunk", "\\Flagged"}, raw)
    dst = _snap({"\\Seen"}, raw, permanent=["\\Seen", "\\Flagged"])
    report = compare(src, dst)
    diff = report.folders[0]
    assert diff.flags_unstorable[0].detail == "the destination cannot store $NotJunk \\Indexed"
    assert diff.flag_mismatches[0].detail == "lost \\Flagged"  # storable, and lost: still damage
    assert not compare(src, _snap({"\\Seen"}, raw, permanent=None)).identical  # no PERMANENTFLAGS: all storable


def test_verifier_accepts_mdnsent_only_on_a_read_message_that_asked():
    asked = b"Message-ID: <a@x>\r\nDisposition-Notification-To: b@x\r\n\r\nbody\r\n"
    ok = compare(_snap({"\\Seen"}, asked), _snap({"\\Seen", "$MDNSent"}, asked))
    assert ok.identical and ok.total("mdn_marked") == 1
    unread = compare(_snap(set(), asked), _snap({"$MDNSent"}, asked))
    assert unread.folders[0].flag_mismatches[0].detail == "gained $MDNSent"


def _migrate(messages: list[tuple[bytes, set[str]]], dest_profile, tmp_path, **options):
    """Simulator → simulator: the report and the destination INBOX as {first header line: flags}."""
    from migrator.engine import MigrationOptions, migrate

    src_store, dst_store = Store(), Store()
    src = src_store.add_account("alice", "pw")
    dst_store.add_account("bob", "pw")
    for raw, flags in messages:
        src.append(("INBOX",), raw, flags=flags, internaldate=WHEN)
    with SimulatorWorld(src_store, load_profile("generic")) as a, SimulatorWorld(dst_store, dest_profile) as b:
        ha, hb = a.start_imap(), b.start_imap()
        report = migrate(Endpoint(ServerURL.parse(ha.url("alice")), Secret("pw"), cafile=a.cafile),
                         Endpoint(ServerURL.parse(hb.url("bob")), Secret("pw"), cafile=b.cafile),
                         MigrationOptions(state_path=tmp_path / "s.sqlite", **options))
    got = {m.raw.split(b"\r\n")[0]: m.flags for m in dst_store.account("bob").folder(("INBOX",)).messages}
    return report, got


def test_flagged_is_restored_by_message_id_without_uidplus(tmp_path):
    """No APPENDUID (no UIDPLUS): the one destination message with the Message-ID gets \\Flagged."""
    messages = [(b"Message-ID: <f%d@x>\r\nSubject: %d\r\n\r\nbody\r\n" % (i, i), flags)
                for i, flags in enumerate([{"\\Seen", "\\Flagged"}, {"\\Seen"}, {"\\Flagged"}])]
    exchange = load_profile("exchange")
    no_uidplus = exchange.model_copy(update={"imap": exchange.imap.model_copy(update={
        "capabilities_after_auth": [c for c in exchange.imap.capabilities_after_auth if c != "UIDPLUS"]})})
    report, got = _migrate(messages, no_uidplus, tmp_path)
    assert report.flags_restored == 2 and report.copied == 3
    assert got == {b"Message-ID: <f0@x>": {"\\Seen", "\\Flagged"}, b"Message-ID: <f1@x>": {"\\Seen"},
                   b"Message-ID: <f2@x>": {"\\Flagged"}}


def test_too_many_keywords_go_again_without_them(tmp_path):
    """PERMANENTFLAGS says \\* but the destination takes at most 4 keywords a message."""
    labels = {f"$label{i}" for i in range(8)}
    messages = [(b"Message-ID: <k@x>\r\n\r\nbody\r\n", {"\\Seen", *labels}),
                (b"Message-ID: <j@x>\r\n\r\nbody\r\n", {"\\Seen", "$Forwarded"})]
    dest = load_profile("generic").with_quirks([QuirkSpec.parse("invalid-flags-on-append:max_keywords=4")])
    report, got = _migrate(messages, dest, tmp_path)
    assert report.copied == 2 and [sorted(d.flags) for d in report.dropped_flags] == [sorted(labels)]
    assert got == {b"Message-ID: <k@x>": {"\\Seen"}, b"Message-ID: <j@x>": {"\\Seen", "$Forwarded"}}
    naive, got = _migrate(messages, dest, tmp_path / "off", disable=["permanentflags-filter"])
    assert naive.copied == 1 and [s.reason for s in naive.skipped] == ["refused"]
