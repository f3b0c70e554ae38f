"""The engine against a real Dovecot holding both the source and the destination user."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
from imapclient import IMAPClient

from migrator.cli import add_migrate_arguments, run_migrate
from migrator.engine import MigrationOptions, migrate
from migrator.errors import AuthenticationFailed, ConnectionFailed, ExitCode
from migrator.urls import Endpoint, Secret, ServerURL
from simulators.store import Account, Store
from tests.test_migrator_support import PASSWORD, dovecot, endpoint, snapshot, user  # noqa: F401 (fixture)

pytestmark = pytest.mark.peer
ZONE = timezone(timedelta(hours=-7))


def message(n: int, *, mid: str | None = "default", subject: str | None = None, body: str = "") -> bytes:
    mid = f"<m{n}@example.org>" if mid == "default" else mid
    head = [f"Received: from mx{n} by example.org; Tue, 4 Jan 2022 10:{n % 60:02d}:00 +0000"]
    if mid:
        head.append(f"Message-ID: {mid}")
    head += ["Date: Mon, 3 Jan 2022 10:00:00 +0000", "From: a@example.org", "To: b@example.org",
             f"Subject: {subject or f'message {n}'}"]
    return ("\r\n".join(head) + "\r\n\r\n" + (body or f"body of message {n}\r\n" * (1 + n % 5))).encode()


def build_account(name: str, layout: dict[tuple[str, ...], int], *, start: int = 0) -> Account:
    """An account whose folders hold ``layout[path]`` distinct messages with varied flags/dates."""
    account = Store().add_account(name, PASSWORD)
    counter = itertools.count(start)
    for path, count in layout.items():
        account.create_folder(path, exist_ok=True, special_use="\\Sent" if path == ("Sent",) else None)
        for _ in range(count):
            n = next(counter)
            flags = [{"\\Seen"}, {"\\Seen", "\\Flagged", "$Forwarded"}, set(), {"\\Answered", "\\Draft"}][n % 4]
            account.append(path, message(n), flags=flags, internaldate=datetime(2022, 1, 1, tzinfo=ZONE) + timedelta(hours=n))
    return account


def expected(account: Account) -> dict[str, list]:
    return {
        "/".join(f.path): sorted((m.raw, frozenset(m.flags), m.internaldate.astimezone(timezone.utc)) for m in f.messages)
        for f in account.folders.values()
    }


LAYOUT = {("INBOX",): 25, ("Sent",): 10, ("Work",): 5, ("Work", "2024"): 12}


def run(dovecot, src, dst, tmp_path, **options):
    options.setdefault("state_path", tmp_path / "state.sqlite")
    options.setdefault("batch_size", 7)  # several batches per folder
    return migrate(endpoint(dovecot, src), endpoint(dovecot, dst), MigrationOptions(**options))


def test_full_copy_then_rerun_copies_nothing(dovecot, tmp_path):
    src, dst = user(dovecot), user(dovecot)
    account = build_account(src, LAYOUT)
    dovecot.load_account(account)
    report = run(dovecot, src, dst, tmp_path)
    assert (report.copied, report.failed, report.skipped_count, report.exit_code) == (52, 0, 0, 0)
    assert snapshot(dovecot, dst) == expected(account)  # bytes, flags and INTERNALDATE instants
    assert report.dropped_flags == [] and report.date_fallbacks == []
    assert {f.source: f.copied for f in report.folders} == {"INBOX": 25, "Sent": 10, "Work": 5, "Work/2024": 12}
    assert report.model_dump_json()  # JSON-able

    again = run(dovecot, src, dst, tmp_path)
    assert (again.copied, again.already_present, again.exit_code) == (0, 52, 0)
    # Without the checkpoint, identity matching still finds every message.
    fresh = run(dovecot, src, dst, tmp_path, state_path=tmp_path / "other.sqlite")
    assert (fresh.copied, fresh.already_present) == (0, 52)
    assert snapshot(dovecot, dst) == expected(account)


def test_merge_with_preexisting_messages_adds_no_duplicates(dovecot, tmp_path):
    src, dst = user(dovecot), user(dovecot)
    account = build_account(src, {("INBOX",): 20, ("Work",): 6})
    dovecot.load_account(account)
    # Another tool already copied the first 8 INBOX messages; the destination also has its own mail.
    other = Store().add_account(dst, PASSWORD)
    for m in account.folder(("INBOX",)).messages[:8]:
        other.append(("INBOX",), m.raw, flags=m.flags, internaldate=m.internaldate)
    other.append(("INBOX",), message(999, subject="only at the destination"), internaldate=datetime(2021, 1, 1, tzinfo=ZONE))
    dovecot.load_account(other)

    report = run(dovecot, src, dst, tmp_path)
    assert (report.copied, report.already_present, report.exit_code) == (18, 8, 0)
    inbox = snapshot(dovecot, dst)["INBOX"]
    assert len(inbox) == 21 and len({raw for raw, _, _ in inbox}) == 21


def test_replace_mode_deletes_destination_items_first(dovecot, tmp_path):
    src, dst = user(dovecot), user(dovecot)
    account = build_account(src, {("INBOX",): 9})
    dovecot.load_account(account)
    other = Store().add_account(dst, PASSWORD)
    for n in (500, 501, 3):  # two strangers and one copy of a source message
        other.append(("INBOX",), message(n), internaldate=datetime(2021, 1, 1, tzinfo=ZONE))
    dovecot.load_account(other)
    report = run(dovecot, src, dst, tmp_path, mode="replace")
    assert report.copied == 9 and report.exit_code == 0
    assert any("deleted 3" in n for n in report.folders[0].notes)
    assert snapshot(dovecot, dst)["INBOX"] == expected(account)["INBOX"]


def test_target_root_include_exclude_and_dry_run(dovecot, tmp_path):
    src, dst = user(dovecot), user(dovecot)
    account = build_account(src, LAYOUT)
    dovecot.load_account(account)
    opts = dict(target_root=["Old"], include=["INBOX", "Work*"], exclude=["Work/2024"])
    dry = run(dovecot, src, dst, tmp_path, dry_run=True, **opts)
    assert dry.dry_run and dry.copied == 30
    assert snapshot(dovecot, dst) == {"INBOX": []}  # nothing written
    assert not (tmp_path / "state.sqlite").exists()

    report = run(dovecot, src, dst, tmp_path, **opts)
    assert report.copied == 30
    assert {f.destination for f in report.folders} == {"Old/INBOX", "Old/Work"}
    assert {s.folder: s.reason for s in report.skipped_folders} == {"Sent": "not included", "Work/2024": "excluded by 'Work/2024'"}
    got = snapshot(dovecot, dst)
    want = expected(account)
    assert got["Old/INBOX"] == want["INBOX"] and got["Old/Work"] == want["Work"]
    assert "Old/Work/2024" not in got and got["INBOX"] == []


def test_missing_and_duplicate_message_ids_are_copied_exactly_once(dovecot, tmp_path):
    src, dst = user(dovecot), user(dovecot)
    account = Store().add_account(src, PASSWORD)
    when = datetime(2023, 5, 5, tzinfo=ZONE)
    raws = [
        message(1, mid=None, subject="draft one"),
        message(2, mid=None, subject="draft two"),
        message(3, mid="<same@x>", subject="first with shared id"),
        message(4, mid="<same@x>", subject="second with shared id"),
        message(5, mid="<same@x>", subject="first with shared id", body="a longer, different body\r\n" * 40),
    ]
    for raw in raws:
        account.append(("INBOX",), raw, internaldate=when)
    dovecot.load_account(account)
    report = run(dovecot, src, dst, tmp_path)
    assert report.copied == 5
    assert sorted(r for r, _, _ in snapshot(dovecot, dst)["INBOX"]) == sorted(raws)
    # Lose the checkpoint: identity must still tell all five apart and find each one.
    rerun = run(dovecot, src, dst, tmp_path, state_path=tmp_path / "lost.sqlite")
    assert (rerun.copied, rerun.already_present) == (0, 5)


def test_uidvalidity_change_rematches_by_identity(dovecot, tmp_path):
    src, dst = user(dovecot), user(dovecot)
    account = build_account(src, {("INBOX",): 3, ("Work",): 8})
    dovecot.load_account(account)
    assert run(dovecot, src, dst, tmp_path).copied == 11
    with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False) as c:  # the server renumbers Work
        c.login(src, PASSWORD)
        c.delete_folder("Work")
    again = Store().add_account(src, PASSWORD)
    again.create_folder(("Work",))
    for m in account.folder(("Work",)).messages:
        again.append(("Work",), m.raw, flags=m.flags, internaldate=m.internaldate)
    again.delete_folder(("INBOX",))
    dovecot.load_account(again)
    report = run(dovecot, src, dst, tmp_path)
    work = next(f for f in report.folders if f.source == "Work")
    assert (report.copied, work.already_present) == (0, 8)
    assert any("UIDVALIDITY changed" in n for n in work.notes)


class StopAfter:
    """A progress sink that 'crashes' the run after ``n`` confirmed messages."""

    def __init__(self, n: int):
        self.n, self.seen = n, 0

    def start(self, plan):
        pass

    def advance(self, folder, messages, nbytes):
        self.seen += messages
        if self.seen >= self.n:
            raise RuntimeError("simulated crash")

    def finish(self):
        pass


def test_crash_then_rerun_loses_and_duplicates_nothing(dovecot, tmp_path):
    src, dst = user(dovecot), user(dovecot)
    account = build_account(src, LAYOUT)
    dovecot.load_account(account)
    opts = MigrationOptions(state_path=tmp_path / "s.sqlite", batch_size=5, connections=2)
    crashed = migrate(endpoint(dovecot, src), endpoint(dovecot, dst), opts, StopAfter(12))
    assert crashed.aborted and "simulated crash" in crashed.aborted
    assert crashed.exit_code == ExitCode.ABORTED
    assert 12 <= crashed.copied < 52
    resumed = migrate(endpoint(dovecot, src), endpoint(dovecot, dst), opts)
    assert resumed.exit_code == 0
    assert resumed.copied + resumed.already_present == 52
    assert crashed.copied + resumed.copied == 52
    assert snapshot(dovecot, dst) == expected(account)


def test_wrong_password_is_authentication_failure(dovecot, tmp_path, monkeypatch):
    src, dst = user(dovecot), user(dovecot)
    with pytest.raises(AuthenticationFailed) as info:
        migrate(endpoint(dovecot, src, "wrong-pw"), endpoint(dovecot, dst), MigrationOptions(state_path=tmp_path / "s"))
    assert "wrong-pw" not in str(info.value) and src in str(info.value)
    assert info.value.exit_code == ExitCode.AUTHENTICATION
    monkeypatch.setenv("QM_SRC", "wrong-pw")
    monkeypatch.setenv("QM_DST", PASSWORD)
    assert cli(dovecot.url(src), dovecot.url(dst), tmp_path) == ExitCode.AUTHENTICATION


def test_unreachable_port_is_connection_failure(tmp_path, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionFailed, match=f"127.0.0.1:{port}"):
        migrate(endpoint_at(port), endpoint_at(port), MigrationOptions(state_path=tmp_path / "s"))
    monkeypatch.setenv("QM_SRC", "x")
    monkeypatch.setenv("QM_DST", "y")
    url = f"imap://a@127.0.0.1:{port}"
    assert cli(url, url, tmp_path) == ExitCode.CONNECTION


def endpoint_at(port: int) -> Endpoint:
    return Endpoint(ServerURL.parse(f"imap://a@127.0.0.1:{port}"), Secret("x"))


def cli(src_url: str, dst_url: str, tmp_path, *extra: str) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    add_migrate_arguments(parser)
    args = parser.parse_args(
        ["--from", src_url, "--to", dst_url, "--from-password-env", "QM_SRC", "--to-password-env", "QM_DST",
         "--state", str(tmp_path / "cli.sqlite"), *extra]
    )
    return run_migrate(args)


def test_cli_writes_report_and_returns_exit_code(dovecot, tmp_path, monkeypatch, capsys):
    import json

    src, dst = user(dovecot), user(dovecot)
    dovecot.load_account(build_account(src, {("INBOX",): 4}))
    monkeypatch.setenv("QM_SRC", PASSWORD)
    monkeypatch.setenv("QM_DST", PASSWORD)
    out = tmp_path / "r" / "report.json"
    assert cli(dovecot.url(src), dovecot.url(dst), tmp_path, "--report", str(out)) == 0
    data = json.loads(out.read_text())
    assert data["copied"] == 4 and data["folders"][0]["destination"] == "INBOX"
    assert PASSWORD not in out.read_text() and PASSWORD not in capsys.readouterr().out
    assert cli(dovecot.url(src), dovecot.url(dst), tmp_path, "--test-connection") == 0


def test_starttls_required_but_not_offered_is_a_tls_failure(dovecot, tmp_path):
    from migrator.errors import TlsFailure

    src, dst = user(dovecot), user(dovecot)
    required = Endpoint(ServerURL.parse(dovecot.url(src) + "?starttls=required"), Secret(PASSWORD))
    with pytest.raises(TlsFailure, match="STARTTLS required but not advertised"):
        migrate(required, endpoint(dovecot, dst), MigrationOptions(state_path=tmp_path / "s"))
