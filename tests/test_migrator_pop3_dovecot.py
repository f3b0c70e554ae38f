"""The POP3 flow against a real Dovecot: its POP3 as the source, its IMAP or LMTP as the destination."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone

import pytest
from imapclient import IMAPClient

from migrator.cli import add_migrate_arguments, run_migrate
from migrator.engine import MigrationOptions, migrate
from migrator.engine import test_connection as probe_connection
from migrator.errors import AuthenticationFailed
from migrator.urls import Endpoint, Secret, ServerURL
from simulators.store import Store
from tests.test_migrator_pop3 import message
from tests.test_migrator_support import PASSWORD, dovecot, endpoint, snapshot, user  # noqa: F401 (fixture)

pytestmark = pytest.mark.peer


def pop3_endpoint(dovecot, name: str, password: str = PASSWORD) -> Endpoint:
    return Endpoint(ServerURL.parse(f"pop3://{name}@{dovecot.host}:{dovecot.pop3_port}"), Secret(password))


def load(dovecot, name: str, messages: list[bytes]) -> None:
    account = Store().add_account(name, PASSWORD)
    account.create_folder(("Old",))
    account.append(("Old",), message(500))  # a folder POP3 cannot see
    for raw in messages:
        account.append(("INBOX",), raw, internaldate=datetime(2030, 1, 1, tzinfo=timezone.utc))
    dovecot.load_account(account)


def test_pop3_to_imap_then_rerun_and_delete(dovecot, tmp_path):
    src, dst = user(dovecot), user(dovecot)
    msgs = [message(n) for n in range(12)]
    load(dovecot, src, msgs)
    opts = dict(state_path=tmp_path / "s.sqlite", batch_size=5, uidl_map_path=tmp_path / "map.csv")
    report = migrate(pop3_endpoint(dovecot, src), endpoint(dovecot, dst), MigrationOptions(**opts))
    assert (report.copied, report.failed, report.exit_code, report.pop3.uidl, report.pop3.login) == (12, 0, 0, "unique", "plain")
    got = snapshot(dovecot, dst)["INBOX"]
    assert got == sorted((m, frozenset(), datetime(2022, 5, 6, 7, 8, n, tzinfo=timezone.utc)) for n, m in enumerate(msgs))
    rows = (tmp_path / "map.csv").read_text().splitlines()
    assert rows[0] == "uidl,destination_folder,destination_uid,identity,via" and len(rows) == 13
    again = migrate(pop3_endpoint(dovecot, src), endpoint(dovecot, dst), MigrationOptions(**opts, pop3_delete=True))
    assert (again.copied, again.already_present, again.pop3.deleted) == (0, 12, 12)
    assert len(snapshot(dovecot, src)["INBOX"]) == 0 and len(snapshot(dovecot, src)["Old"]) == 1
    assert len(snapshot(dovecot, dst)["INBOX"]) == 12


def test_pop3_to_lmtp_delivery(dovecot, tmp_path):
    src, dst = user(dovecot), user(dovecot)
    msgs = [message(n) for n in range(5)]
    load(dovecot, src, msgs)
    lmtp = Endpoint(ServerURL.parse(f"lmtp://{dst}@{dovecot.host}:{dovecot.lmtp_port}"), Secret(""))
    opts = MigrationOptions(state_path=tmp_path / "s.sqlite")
    report = migrate(pop3_endpoint(dovecot, src), lmtp, opts)
    assert (report.copied, report.failed, report.pop3.delivery, report.pop3.folder) == (5, 0, "lmtp", dst)
    assert any("folders" in loss for loss in report.pop3.losses) and any("delivery" in loss for loss in report.pop3.losses)
    with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False) as c:
        c.login(dst, PASSWORD)
        c.select_folder("INBOX", readonly=True)
        bodies = [v[b"BODY[]"] for v in c.fetch(c.search("ALL"), ["BODY.PEEK[]"]).values()]
    assert len(bodies) == 5
    for raw in msgs:  # Dovecot adds Return-Path/Delivered-To/Received above the original message
        assert sum(b.endswith(raw) for b in bodies) == 1
    assert migrate(pop3_endpoint(dovecot, src), lmtp, opts).copied == 0  # the checkpoint alone prevents duplicates
    probe = probe_connection(lmtp, role="destination")
    assert (probe.endpoint, probe.inbox_messages) == (lmtp.url.display(), 0) and "PIPELINING" in probe.capabilities


def test_wrong_password_and_cli(dovecot, tmp_path, monkeypatch, capsys):
    src, dst = user(dovecot), user(dovecot)
    load(dovecot, src, [message(1), message(2)])
    with pytest.raises(AuthenticationFailed):
        migrate(pop3_endpoint(dovecot, src, "nope"), endpoint(dovecot, dst), MigrationOptions(state_path=tmp_path / "x"))
    monkeypatch.setenv("PW", PASSWORD)
    monkeypatch.setenv("BAD", "nope")
    parser = argparse.ArgumentParser()
    add_migrate_arguments(parser)
    base = ["--from", f"pop3://{src}@{dovecot.host}:{dovecot.pop3_port}", "--to", dovecot.url(dst),
            "--to-password-env", "PW", "--state", str(tmp_path / "s.sqlite")]
    assert run_migrate(parser.parse_args(base + ["--from-password-env", "BAD"])) == 4
    args = parser.parse_args(base + ["--from-password-env", "PW", "--pop3-folder", "From POP3",
                                     "--uidl-map", str(tmp_path / "m.json"), "--report", str(tmp_path / "r.json")])
    assert run_migrate(args) == 0
    assert len(snapshot(dovecot, dst)["From POP3"]) == 2
    assert json.loads((tmp_path / "r.json").read_text())["pop3"]["folder"] == "From POP3"
    assert len(json.loads((tmp_path / "m.json").read_text())["messages"]) == 2
