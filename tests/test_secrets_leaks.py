"""No password or token ever shows: full migrations from IMAP, POP3 and EWS sources (the CLI as a
child process and the engine in-process under DEBUG logging), with right and wrong passwords and a
failing destination, then every stdout/stderr line, log record, JSON report, exception text and
the scenario reports (report.json, junit.xml, report.html) are scanned for the distinctive secrets.
(The engine writes no log file of its own: its output is stdout/stderr, logging and the reports.)
"""

from __future__ import annotations

import logging
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from migrator.engine import MigrationOptions, migrate
from migrator.errors import MigratorError
from migrator.urls import Endpoint, Secret, ServerURL
from scenarios import reports, runner
from scenarios.model import load_scenario
from simulators.fixtures import FixtureSpec, populate
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import Store
from tests.crash_support import engine_env

SRC_PW = "Src-S3cr3t-Zebra-4417"
DST_PW = "Dst-S3cr3t-Quokka-9902"
WRONG_PW = "Wr0ng-S3cr3t-Yak-5150"
SECRETS = (SRC_PW, DST_PW, WRONG_PW)
LIBRARY = Path(__file__).resolve().parent.parent / "scenarios" / "library"


def leaks(text: str) -> list[str]:
    """The secrets (or their distinctive middle part, as a fragment survives truncation) in text."""
    return [s for s in SECRETS if s in text or s.split("-")[2] in text]


@pytest.fixture(scope="module")
def servers():
    """IMAP + POP3 (generic) and EWS (exchange) sources, an IMAP destination, each its own world."""
    mail = Store().add_account("ivy", SRC_PW)
    populate(mail, FixtureSpec(seed=21, messages=8, folders=2), load_profile("generic"))
    exchange = Store().add_account("eve", SRC_PW)
    populate(exchange, FixtureSpec(seed=22, messages=6, folders=2), load_profile("exchange"))
    dest = Store()
    for name in ("d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8"):
        dest.add_account(name, DST_PW)
    with (SimulatorWorld(mail._store, load_profile("generic")) as mw,
          SimulatorWorld(exchange._store, load_profile("exchange")) as ew,
          SimulatorWorld(dest, load_profile("generic")) as dw):
        yield {
            "imap": (mw.start_imap().url("ivy"), mw.cafile),
            "pop3": (mw.start_pop3().url("ivy"), mw.cafile),
            "ews": (ew.start_ews().url("eve"), None),
            "dest": (dw.start_imap(), dw.cafile),
        }


def cli_cases(servers) -> list[tuple[str, str, str, str, str]]:
    """(name, source URL, destination URL, source password, destination password)."""
    dest, _ = servers["dest"]
    closed = "imap://d9@127.0.0.1:1"  # nothing listens there: a destination that cannot be reached
    return [
        ("imap", servers["imap"][0], dest.url("d1"), SRC_PW, DST_PW),
        ("pop3", servers["pop3"][0], dest.url("d2"), SRC_PW, DST_PW),
        ("ews", servers["ews"][0], dest.url("d3"), SRC_PW, DST_PW),
        ("imap-wrong-source", servers["imap"][0], dest.url("d4"), WRONG_PW, DST_PW),
        ("pop3-wrong-source", servers["pop3"][0], dest.url("d4"), WRONG_PW, DST_PW),
        ("ews-wrong-source", servers["ews"][0], dest.url("d4"), WRONG_PW, DST_PW),
        ("imap-dest-refuses-login", servers["imap"][0], dest.url("d5"), SRC_PW, WRONG_PW),
        ("pop3-dest-unreachable", servers["pop3"][0], closed, SRC_PW, DST_PW),
    ]


@pytest.mark.slow
def test_cli_runs_print_and_report_no_secret(servers, tmp_path):
    _, dest_ca = servers["dest"]
    codes = {}
    # A child process costs seconds (EWS: exchangelib's import): the in-process test runs every case.
    chosen = ("imap", "ews-wrong-source", "imap-dest-refuses-login", "pop3-dest-unreachable")
    for name, src, dst, src_pw, dst_pw in [c for c in cli_cases(servers) if c[0] in chosen]:
        report = tmp_path / f"{name}.json"
        ca = servers[name.split("-")[0]][1]
        args = ["--from", src, "--to", dst, "--from-password-env", "QM_S", "--to-password-env", "QM_D",
                "--to-cafile", str(dest_ca), "--state", str(tmp_path / f"{name}.sqlite"), "--report", str(report),
                "--items", "mail"] + (["--from-cafile", str(ca)] if ca else [])
        env = engine_env({"QM_S": src_pw, "QM_D": dst_pw, "COLUMNS": "300"})
        done = subprocess.run([sys.executable, "-m", "migrator", *args], env=env, capture_output=True, text=True,
                              timeout=120)
        codes[name] = done.returncode
        for where, text in (("stdout", done.stdout), ("stderr", done.stderr),
                            ("report", report.read_text() if report.exists() else "")):
            assert not leaks(text), f"{name}: {where} shows a secret:\n{text}"
    assert codes == {"imap": 0, "ews-wrong-source": 4, "imap-dest-refuses-login": 4, "pop3-dest-unreachable": 3}, codes


@pytest.mark.slow
def test_in_process_runs_log_and_raise_no_secret(servers, tmp_path, caplog):
    """DEBUG logging of everything (imapclient logs each command it sends), every exception's text,
    repr and traceback, every report's JSON."""
    dest, dest_ca = servers["dest"]
    caplog.set_level(logging.DEBUG)
    logging.getLogger("imapclient").setLevel(logging.DEBUG)
    texts, outcomes = [], {}
    for i, (name, src, dst, src_pw, dst_pw) in enumerate(cli_cases(servers)):
        ca = servers[name.split("-")[0]][1]
        source = Endpoint(ServerURL.parse(src), Secret(src_pw), cafile=ca)
        target = Endpoint(ServerURL.parse(dst), Secret(dst_pw), cafile=dest_ca)
        try:
            report = migrate(source, target, MigrationOptions(state_path=tmp_path / f"{i}.sqlite", items=["mail"]))
            texts.append(report.model_dump_json())
            outcomes[name] = report.exit_code
        except MigratorError as exc:
            texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
            outcomes[name] = int(exc.exit_code)
        texts += [repr(source), str(source), repr(target.password)]
    assert outcomes == {"imap": 0, "pop3": 0, "ews": 0, "imap-wrong-source": 4, "pop3-wrong-source": 4,
                        "ews-wrong-source": 4, "imap-dest-refuses-login": 4, "pop3-dest-unreachable": 3}, outcomes
    records = [r.getMessage() + repr(r.args) for r in caplog.records]
    assert any("LOGIN" in r.upper() for r in records), "imapclient's DEBUG log was not captured"
    for text in texts + records:
        assert not leaks(text), text


@pytest.mark.peer
@pytest.mark.slow
def test_scenario_reports_hold_no_secret(tmp_path, monkeypatch):
    """The scenario runner's report.json, junit.xml and report.html, for a passing run and a
    refused-login run, with the runner's passwords made distinctive."""
    numbers = iter(range(1000))
    monkeypatch.setattr(runner, "_new_user", lambda role: (f"{role}{next(numbers)}", SRC_PW if role == "source" else DST_PW))
    results = [runner.run_scenario(load_scenario(LIBRARY / "imap" / "merge-into-existing.yaml")),
               runner.run_scenario(load_scenario(LIBRARY / "pop3" / "wrong-password.yaml"))]
    assert [r.passed for r in results] == [True, True], [r.failures for r in results]
    reports.write_all(results, tmp_path)
    files = sorted(tmp_path.iterdir())
    assert {f.name for f in files} >= {"report.json", "junit.xml", "report.html"}
    for f in files:
        assert not leaks(f.read_text(encoding="utf-8")), f.name
