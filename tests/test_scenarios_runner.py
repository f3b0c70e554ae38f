"""The runner on library files, end to end: simulator → Dovecot with our engine and with doveadm.

Each passing scenario is also made to fail: the destination is damaged after the migration and
the result must say what is wrong, in a sentence.
"""

from __future__ import annotations

from pathlib import Path

import ssl
from contextlib import contextmanager

import imapclient
import pytest

from scenarios.model import load_scenario
from scenarios.runner import Side, run_scenario

LIBRARY = Path(__file__).resolve().parents[1] / "scenarios" / "library" / "imap"

pytestmark = pytest.mark.peer


@pytest.fixture(autouse=True)
def needs_dovecot():
    from scenarios.peers.dovecot import availability

    if availability():
        pytest.skip(availability())


def delete_first_inbox_message(source: Side, dest: Side) -> None:
    delete_first_message(dest, "INBOX")


@contextmanager
def session(side: Side):
    """A logged-in IMAP client on one side (STARTTLS with the simulator's own CA when it has one)."""
    with imapclient.IMAPClient(side.host, port=side.port, ssl=False) as c:
        if side.endpoint.cafile:
            c.starttls(ssl.create_default_context(cafile=str(side.endpoint.cafile)))
        c.login(side.user, side.password)
        yield c


def delete_first_message(dest: Side, folder: str | None = None) -> None:
    """Expunge one message of ``folder`` (default: the destination's fullest folder)."""
    with session(dest) as c:
        if folder is None:
            names = [name for flags, _, name in c.list_folders() if b"\\Noselect" not in flags]
            folder = max(names, key=lambda n: c.folder_status(n, ["MESSAGES"])[b"MESSAGES"])
        c.select_folder(folder)
        c.delete_messages(sorted(c.search("ALL"))[:1])
        c.expunge()


def test_rerun_scenario_passes_and_reports_each_run():
    result = run_scenario(load_scenario(LIBRARY / "rerun-copies-nothing.yaml"))
    assert result.passed, result.failures
    assert (result.name, result.area) == ("rerun-copies-nothing", "imap")
    assert [r.copied for r in result.runs] == [35, 0]
    assert [r.exit_code for r in result.runs] == [0, 0]
    assert result.verify.identical and sum(f.source_count for f in result.verify.folders) == 35
    assert result.runs[0].report["copied"] == 35


def test_a_damaged_destination_fails_with_a_sentence_naming_the_problem():
    result = run_scenario(load_scenario(LIBRARY / "plain-into-dovecot.yaml"), after_migration=delete_first_inbox_message)
    assert not result.passed
    assert result.failures[0] == "destination folder 'INBOX' holds 31 messages, expected 32"
    assert result.failures[1].startswith("the destination is not identical to the source: 1 missing (INBOX: 1; e.g. uid 1 <")
    assert len(result.failures) == 2


TOUCH_SOURCE = (
    "import imaplib, sys; c = imaplib.IMAP4(sys.argv[1], int(sys.argv[2])); c.login(sys.argv[3], sys.argv[4]); "
    "c.select('INBOX'); c.store('1:2', '+FLAGS', '($Touched)'); c.logout()"
)


def test_an_engine_that_touches_the_source_fails(tmp_path):
    path = tmp_path / "imap" / "careless.yaml"
    path.parent.mkdir()
    argv = ["python3", "-c", TOUCH_SOURCE, "{source_host}", "{source_port}", "{source_user}", "{source_password}"]
    path.write_text(
        "source: {server: simulator, fixture: {seed: 2, messages: 6, folders: 2}}\n"
        f"migration: {{command: {argv!r}}}\n"
        "expect: {identical: false, missing: 6}\n"
    )
    result = run_scenario(load_scenario(path))
    assert result.runs[0].exit_code == 0, result.runs[0].error
    inbox = next(f for f in result.source_check.folders if f.source == "INBOX")
    assert [r.uid for r in inbox.flag_mismatches] == [1, 2]
    assert result.failures == [
        f"the migration changed the source mailbox: 2 flag mismatches (INBOX: 2; e.g. uid 1 "
        f"{inbox.flag_mismatches[0].identity}, gained $Touched)"
    ]


def test_a_wrong_expectation_fails(tmp_path):
    text = (LIBRARY / "rerun-copies-nothing.yaml").read_text().replace("[35, 0]", "[35, 3]")
    path = tmp_path / "imap" / "wrong.yaml"
    path.parent.mkdir()
    path.write_text(text)
    result = run_scenario(load_scenario(path))
    assert result.failures == ["run 2 copied 0 messages, expected 3"]


def test_an_external_command_that_does_nothing_is_judged_by_the_verifier(tmp_path):
    path = tmp_path / "imap" / "lazy.yaml"
    path.parent.mkdir()
    path.write_text(
        "source: {server: simulator, fixture: {seed: 2, messages: 5, folders: 2}}\n"
        "migration: {command: ['sh', '-c', 'echo pretending for {source_user} with {source_password}']}\n"
    )
    result = run_scenario(load_scenario(path))
    assert not result.passed
    assert result.runs[0].exit_code == 0
    assert "***" in result.runs[0].error and result.runs[0].error.startswith("pretending for alice with")
    assert "5 missing" in result.failures[0]


def test_doveadm_backup_reference_engine_passes():
    result = run_scenario(load_scenario(LIBRARY / "doveadm-backup-reference.yaml"))
    assert result.passed, (result.failures, result.runs[0].error)
    assert result.runs[0].copied is None
    assert sum(f.dest_count for f in result.verify.folders) == 40


def test_missing_dovecot_skips_with_the_reason(monkeypatch):
    from scenarios.peers import dovecot

    monkeypatch.setattr(dovecot.DovecotServer, "availability", staticmethod(lambda: "dovecot is not installed"))
    result = run_scenario(load_scenario(LIBRARY / "plain-into-dovecot.yaml"))
    assert result.skipped == "needs Dovecot: dovecot is not installed"
    assert not result.runs


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(LIBRARY.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_library_scenario_fails_when_a_message_is_lost(path):
    result = run_scenario(load_scenario(path), after_migration=lambda source, dest: delete_first_message(dest))
    assert not result.passed, f"{path.name} did not notice a lost message"
    assert result.failures


def test_dovecot_source_with_new_mail_between_runs(tmp_path):
    path = tmp_path / "imap" / "dovecot-to-dovecot.yaml"
    path.parent.mkdir()
    path.write_text(
        "source: {server: dovecot, fixture: {seed: 4, messages: 12, folders: 3}}\n"
        "migration: {runs: 2, new_mail_between_runs: {seed: 5, messages: 3, folders: 1}}\n"
        "expect: {exit_code: [0, 0], copied_per_run: [12, 3], unexpected: 0, folders: {INBOX: 11}}\n"
    )
    result = run_scenario(load_scenario(path))
    assert result.passed, result.failures
    assert result.source_check.exact  # new mail came between runs, never during one
    assert result.verify.identical and sum(f.source_count for f in result.verify.folders) == 15
