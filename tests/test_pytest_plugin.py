"""The pytest plugin for other teams (scenarios.pytest_fixtures), run through pytester as a user would."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]

# The entry point (when installed) is blocked so the plugin is loaded exactly once, by -p, from this tree.
ARGS = ("-p", "no:quirkmail", "-p", "scenarios.pytest_fixtures", "-p", "no:cacheprovider", "-q")

FIVE_LINES = '''
import pytest
from migrator.engine import MigrationOptions, migrate
from scenarios.pytest_fixtures import verify_migration

@pytest.mark.quirkmail(profile="gmail", fixture={"seed": 3, "messages": 20, "folders": 3})
def test_my_tool(imap_server, mail_servers, tmp_path):
    dest = mail_servers.imap(profile="generic")
    migrate(imap_server.endpoint, dest.endpoint, MigrationOptions(state_path=tmp_path / "state"))
    verify_migration(imap_server, dest).assert_identical()
'''


def run(pytester: pytest.Pytester, source: str, *extra: str) -> pytest.RunResult:
    """A pytest run in its own process, as a user's: in-process runs drop the modules they imported,
    and a second import of the quirk registry or cryptography's bindings in one process breaks them."""
    pytester.makepyfile(source)
    pytester._monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return pytester.runpytest_subprocess(*ARGS, *extra, timeout=60)


@pytest.mark.slow  # a real migration in a fresh pytest process: 3-8 s on a loaded machine
def test_the_five_line_example_passes(pytester):
    result = run(pytester, FIVE_LINES)
    result.assert_outcomes(passed=1)


BAD_MARKERS = {
    "unknown_profile": ('profile="no-such-provider"', "*profile 'no-such-provider': no profile*"),
    "unknown_quirk": ('quirks=["no-such-quirk:after=1"]', "*unknown quirk 'no-such-quirk' (known: *"),
    "bad_quirk_param": ('quirks=["m365-throttled-backoff:after=soon"]', "*quirk 'm365-throttled-backoff': *after*"),
    "unknown_fault": ('faults=["no-such-fault"]', "*unknown fault 'no-such-fault' (known: *"),
    "bad_fixture": ('fixture={"mesages": 3}', "*fixture mesages: Extra inputs*"),
    "bad_keyword": ('profil="gmail"', "*unexpected keyword argument 'profil'*"),
}


def test_a_bad_marker_fails_the_setup_naming_the_value(pytester):
    tests = "".join(
        f"\n@pytest.mark.quirkmail({marker})\ndef test_{name}(imap_server):\n    pass\n"
        for name, (marker, _) in BAD_MARKERS.items()
    )
    result = run(pytester, "import pytest\n" + tests)
    result.assert_outcomes(errors=len(BAD_MARKERS))
    for name, (_, said) in BAD_MARKERS.items():  # the error's section, then its one-line message
        result.stdout.fnmatch_lines([f"*ERROR at setup of test_{name} *", f"@pytest.mark.quirkmail: {said}"])
    assert "During handling" not in result.stdout.str()  # the message alone, not a chained traceback


BEHAVIOUR = '''
import json
import poplib
import smtplib

import imapclient
import pytest
from scenarios.pytest_fixtures import verify_migration


def record(world):
    ports = {p: s.port for p, s in world.servers.items()}
    with open(RECORD, "a") as f:
        f.write(json.dumps(ports) + "\\n")


@pytest.mark.quirkmail(profile="m365")
def test_world_one(mail_world):
    assert mail_world.imap.store is mail_world.pop3.store is mail_world.store
    record(mail_world)


@pytest.mark.quirkmail(profile="m365")
def test_world_two(mail_world):
    record(mail_world)


@pytest.mark.quirkmail(profile="m365", quirks=["m365-throttled-backoff:after=2"])
def test_throttled(imap_server):
    client = imapclient.IMAPClient(imap_server.host, imap_server.port, ssl=False, timeout=10)
    client.login(imap_server.user, imap_server.password)
    client.noop()
    client.noop()
    with pytest.raises(imapclient.exceptions.IMAPClientError) as refused:
        client.noop()
    assert "Request is throttled. Suggested Backoff Time: 299609 milliseconds" in str(refused.value)
    client.noop()  # times=1: the next command is served again
    client.logout()


@pytest.mark.quirkmail(fixture={"seed": 5, "messages": 4, "folders": 1})
def test_smtp_delivery_is_on_pop3(smtp_server, pop3_server):
    before = len(pop3_server.account.folder(("INBOX",)).messages)
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as smtp:
        smtp.sendmail("bob@example.test", [smtp_server.user + "@quirkmail.test"], b"Subject: hi\\r\\n\\r\\nhello\\r\\n")
    pop = poplib.POP3(pop3_server.host, pop3_server.port, timeout=10)
    pop.user(pop3_server.user)
    pop.pass_(pop3_server.password)
    assert pop.stat()[0] == before + 1
    pop.quit()


@pytest.mark.quirkmail(fixture={"seed": 4, "messages": 6, "folders": 2})
def test_nothing_copied(imap_server, mail_servers):
    verify_migration(imap_server, mail_servers.imap()).assert_identical()
'''


def test_fixtures_by_marker_over_the_wire(pytester, tmp_path):
    """Per test: own ports, closed at teardown; the marker's quirk on the wire; one mailbox behind
    the fronts; a failed verification says the verifier's summary."""
    record = tmp_path / "ports.jsonl"
    result = run(pytester, f"RECORD = {str(record)!r}\n" + BEHAVIOUR)
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: verify imap://alice@127.0.0.1:*", "*NOT IDENTICAL*missing 6*"])
    result.stdout.fnmatch_lines(["FAILED *::test_nothing_copied*"])
    first, second = (json.loads(line) for line in record.read_text().splitlines())
    assert sorted(first) == sorted(second) == ["ews", "imap", "pop3", "smtp"]  # m365 has an ews: block
    ports = list(first.values()) + list(second.values())
    assert len(set(ports)) == 8
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
