"""The engine's side of the limits: timeouts by folder size, header batches, the cap's classification."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

import migrator.sources.imap as source_module
from migrator.errors import AuthenticationFailed, CapReached, ExitCode, TooManyConnections
from migrator.imapconn import login_error
from migrator.sources.imap import HEADER_BATCH, ImapSource
from migrator.timeouts import FolderTimeouts
from migrator.urls import Endpoint, Secret, ServerURL
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.quirks import QuirkSpec
from simulators.store import Store

WHEN = datetime(2024, 3, 1, tzinfo=timezone.utc)


def test_folder_timeouts_grow_with_the_folder_and_fall_back_to_the_base():
    t = FolderTimeouts(base=120, per_1000=12)
    assert t.for_folder(None) == 120 and t.for_folder("INBOX") == 120  # nothing known yet
    t.hint({"INBOX": 150_000, "Sent": 40})
    assert t.for_folder("INBOX") == 120 + 1800  # half an hour for Gmail's 150k-message folder
    assert t.for_folder("Sent") == pytest.approx(120.48)
    assert t.for_folder("INBOX", messages=1000) == 132  # EXISTS, once selected, wins over the hint
    assert FolderTimeouts(base=5, per_1000=0).for_folder("INBOX", 10**6) == 5  # adaptive-timeout off


@pytest.mark.parametrize("text, error", [
    ("[OVERQUOTA] Account exceeded command or bandwidth limits.", CapReached),
    ("[ALERT] Too many simultaneous connections. (Failure)", TooManyConnections),
    ("[AUTHENTICATIONFAILED] Invalid credentials (Failure)", AuthenticationFailed),
])
def test_a_refused_login_for_the_bandwidth_cap_is_a_pause_not_a_wrong_password(text, error):
    exc = login_error("source imap://alice@imap.example.net:993", text, set())
    assert type(exc) is error
    if error is CapReached:
        assert exc.exit_code == ExitCode.ABORTED and exc.role == "source"
        assert "a later run resumes" in str(exc) and "imap://alice@imap.example.net:993" in str(exc)
    dest = login_error("destination imap://bob@x:143", "[OVERQUOTA] Account exceeded command or bandwidth limits.", set())
    assert dest.role == "destination"


def test_headers_come_in_uid_batches_under_a_timeout_sized_for_the_folder(monkeypatch):
    store = Store()
    account = store.add_account("alice", "pw")
    total = 2 * HEADER_BATCH + 7
    for i in range(total):
        account.append(("INBOX",), b"Message-ID: <m%d@x>\r\nSubject: %d\r\n\r\nbody\r\n" % (i, i), internaldate=WHEN)
    profile = load_profile("generic").with_quirks([QuirkSpec.parse("slow-large-folder:ms_per_1000=100,threshold=500")])
    calls = []
    real = source_module.uid_fetch

    def spy(client, uids, items):
        calls.append((uids, items))
        return real(client, uids, items)

    monkeypatch.setattr(source_module, "uid_fetch", spy)
    with SimulatorWorld(store, profile) as world:
        handle = world.start_imap()
        timeouts = FolderTimeouts(base=0.05, per_1000=1.0)  # the 0.1 s SELECT would trip 0.05 s alone
        timeouts.hint({"INBOX": total})
        endpoint = Endpoint(ServerURL.parse(handle.url("alice")), Secret("pw"), cafile=world.cafile)
        src = ImapSource(endpoint, timeouts)
        try:
            headers = src.headers("INBOX", list(range(total, 0, -1)))
            assert src.client.socket().gettimeout() == pytest.approx(0.05 + total / 1000)
        finally:
            src.close()
    assert len(headers) == total and headers[3].startswith(b"Message-ID: <m2@x>")
    header_calls = [uids for uids, items in calls if "HEADER.FIELDS" in items[0]]
    assert header_calls == [f"1:{HEADER_BATCH}", f"{HEADER_BATCH + 1}:{2 * HEADER_BATCH}",
                            f"{2 * HEADER_BATCH + 1}:{total}"]


def test_cli_limits_reach_the_options_and_bad_values_exit_2(monkeypatch, capsys):
    from tests.test_migrator_cli import parse
    from migrator.cli import run_migrate

    args = parse("--byte-budget", "2000", "--timeout", "30", "--timeout-per-1000", "5")
    assert (args.byte_budget_mb, args.read_timeout, args.timeout_per_1000) == (2000, 30, 5)
    monkeypatch.setenv("P", "x")
    for bad in (["--byte-budget", "0"], ["--timeout", "-1"], ["--timeout-per-1000", "-0.5"]):
        assert run_migrate(parse(*bad, "--from-password-env", "P", "--to-password-env", "P")) == ExitCode.USAGE
    assert "--byte-budget and --timeout must be positive" in capsys.readouterr().err
