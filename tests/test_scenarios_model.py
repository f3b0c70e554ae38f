"""Scenario files: what validates, and how a bad file is reported (file + field path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarios.model import ScenarioError, load_scenario

LIBRARY = Path(__file__).resolve().parents[1] / "scenarios" / "library"

GOOD = """\
description: Courier-style INBOX. prefix into Dovecot
source:
  server: simulator
  profile: generic
  quirks: ["appendlimit:bytes=1000,advertise=false"]
  fixture: {seed: 3, messages: 40, folders: 6}
destination: {server: dovecot}
migration:
  options: {mode: merge, target_root: []}
  runs: 2
expect:
  exit_code: 0
  copied_per_run: [40, 0]
  skipped: [{reason: too-large, count: 1}]
"""


def write(tmp_path: Path, text: str, name: str = "case.yaml") -> Path:
    area = tmp_path / "imap"
    area.mkdir(exist_ok=True)
    path = area / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_loads_with_defaults_filled_in(tmp_path):
    s = load_scenario(write(tmp_path, GOOD, "delimiter-translation.yaml"))
    assert s.name == "delimiter-translation" and s.area == "imap"
    assert s.source.fixture.messages == 40 and s.source.fixture.seed == 3
    assert s.source.quirks[0].name == "appendlimit" and s.source.quirks[0].params == {"bytes": 1000, "advertise": False}
    assert s.migration.engine == "quirkmail" and s.migration.runs == 2
    assert s.expect.copied_per_run == [40, 0]
    assert s.expect.wants_identical()
    assert s.needs_dovecot


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (("  runs: 2", "  runs: 0"), "migration.runs", "greater than or equal to 1"),
        (("  exit_code: 0", "  exit_codes: 0"), "expect.exit_codes", "Extra inputs"),
        (("folders: 6}", "folders: six}"), "source.fixture.folders", "valid integer"),
        (("server: dovecot}", "server: exchange}"), "destination.server", "'dovecot' or 'replay'"),
        (("copied_per_run: [40, 0]", "copied_per_run: [40]"), "expect.copied_per_run", "lists 1 runs but migration.runs is 2"),
        (("reason: too-large, count: 1", "reason: too-large"), "expect.skipped.0.count", "Field required"),
        (("appendlimit:bytes=1000", "no-such-quirk:bytes=1000"), "source.quirks", "unknown quirk 'no-such-quirk'"),
        (("appendlimit:bytes=1000", "appendlimit:bites=1000"), "source.quirks", "quirk 'appendlimit'"),
    ],
)
def test_a_bad_file_names_the_file_and_the_field(tmp_path, change, field, words):
    old, new = change
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.file == path
    assert info.value.field == field
    assert words in info.value.problem
    assert str(path) in str(info.value)


def test_unknown_placeholder_in_a_command_is_refused(tmp_path):
    text = """\
source: {server: dovecot, fixture: {messages: 1}}
migration: {command: ["doveadm", "-c", "{dovecot_cfg}"]}
"""
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, text))
    assert info.value.field == "migration.command"
    assert "dovecot_cfg" in info.value.problem and "dovecot_config" in info.value.problem


def test_engine_report_expectations_need_our_engine(tmp_path):
    text = """\
source: {server: dovecot}
migration: {command: ["true"]}
expect: {copied_per_run: [1]}
"""
    with pytest.raises(ScenarioError, match="expect.copied_per_run: needs the quirkmail engine"):
        load_scenario(write(tmp_path, text))


@pytest.mark.parametrize("text", ["- just\n- a list\n", "source: {server: [unclosed\n", ""])
def test_not_a_mapping_or_not_yaml(tmp_path, text):
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, text))
    assert info.value.field == ""


def test_missing_file(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "nope.yaml")


def test_every_library_scenario_validates():
    files = sorted(LIBRARY.glob("*/*.yaml"))
    assert len(files) >= 12
    names = [load_scenario(f).name for f in files]
    assert len(set(names)) == len(names), "scenario names must be unique"
