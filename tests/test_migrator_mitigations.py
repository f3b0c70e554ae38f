"""Mitigation switches: names validated, each asked at its one place, the report says what was off."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import ValidationError

from migrator.engine import MigrationOptions
from migrator.mitigations import MITIGATIONS, Mitigations, UnknownMitigation

ENGINE = Path(__file__).resolve().parent.parent / "migrator" / "engine.py"
BATCH = ENGINE.parent / "batch" / "runner.py"  # the batch scheduler's one mitigation


def test_all_on_by_default_and_off_by_name():
    assert all(Mitigations().on(n) for n in MITIGATIONS)
    m = Mitigations(["internaldate"])
    assert not m.on("internaldate") and m.on("identity-dedup")


def test_unknown_names_are_refused_in_options_and_at_call_sites():
    with pytest.raises(ValidationError, match="unknown mitigation 'internal-date'"):
        MigrationOptions(disable=["internal-date"])
    with pytest.raises(UnknownMitigation, match="known: identity-dedup"):
        Mitigations().on("typo")
    assert MigrationOptions(disable=["throttle-backoff"]).disable == ["throttle-backoff"]


def test_every_mitigation_is_documented_and_asked_by_the_engine():
    doc = (ENGINE.parent / "mitigations.py").read_text()
    asked = [
        node.args[0].value
        for module in (ENGINE, BATCH)
        for node in ast.walk(ast.parse(module.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "on"
        and node.args and isinstance(node.args[0], ast.Constant)
    ]
    assert set(asked) == set(MITIGATIONS)
    for name in MITIGATIONS:
        assert f"| {name}" in doc, f"{name} has no row in the mitigations table"


def test_the_report_lists_what_was_switched_off(tmp_path):
    from scenarios.model import load_scenario
    from scenarios.runner import run_scenario

    s = load_scenario(Path(__file__).resolve().parent.parent / "scenarios/library/quirks/id-required.yaml")
    s = s.model_copy(update={"migration": s.migration.model_copy(
        update={"options": {"disable": ["internaldate", "appendlimit-skip"]}})})
    report = run_scenario(s).runs[0].report
    assert report["mitigations_off"] == ["appendlimit-skip", "internaldate"]


def test_every_flow_starts_its_report_from_one_constructor():
    # MigrationReport.begin gives the IMAP, POP3 and EWS flows the same head, mitigations_off included.
    from migrator.report import MigrationReport
    from migrator.urls import Endpoint, Secret, ServerURL

    source = Endpoint(ServerURL.parse("ews://u@127.0.0.1:1"), Secret("pw-begin"))
    report = MigrationReport.begin(source, None, MigrationOptions(disable=["lenient-list", "content-repair"], dry_run=True))
    assert (report.destination, report.mitigations_off, report.dry_run) == ("", ["content-repair", "lenient-list"], True)
    assert "pw-begin" not in report.model_dump_json()
    by_hand = [p.name for p in ENGINE.parent.rglob("*.py")
               if "MigrationReport(" in p.read_text().replace("class MigrationReport(", "")]
    assert by_hand == []


def test_cli_refuses_an_unknown_mitigation_with_usage_exit(monkeypatch, capsys):
    import argparse

    from migrator.cli import add_migrate_arguments, run_migrate
    from migrator.errors import ExitCode

    parser = argparse.ArgumentParser()
    add_migrate_arguments(parser)
    monkeypatch.setenv("P", "x")
    args = parser.parse_args(["--from", "imap://a@127.0.0.1:9", "--to", "imap://b@127.0.0.1:9", "--from-password-env",
                              "P", "--to-password-env", "P", "--disable", "dates", "--gmail-labels", "per-label"])
    assert args.gmail_labels == "per-label"
    assert run_migrate(args) == ExitCode.USAGE
    assert "--disable: unknown mitigation 'dates'" in capsys.readouterr().err
