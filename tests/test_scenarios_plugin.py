"""The pytest plugin used directly (``pytest -p scenarios.plugin PATH``), as CI scripts may."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pytest_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "scenarios.plugin", "-p", "no:cacheprovider", "-o", "addopts=",
         "--rootdir", str(tmp_path), *args],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )


def test_items_are_named_area_slash_name_and_failures_are_sentences_not_tracebacks(tmp_path):
    area = tmp_path / "quirks"
    area.mkdir()
    # Simulator to simulator: runs without Dovecot.
    (area / "counts.yaml").write_text(
        "name: wrong-counts\n"
        "source: {server: simulator, fixture: {seed: 2, messages: 6, folders: 2}}\n"
        "destination: {server: simulator}\n"
        "expect: {folders: {INBOX: 99}}\n",
        encoding="utf-8",
    )
    (area / "bad.yaml").write_text("source: {server: simulator}\nexpect: {exit: 0}\n", encoding="utf-8")
    (tmp_path / "not-a-scenario.yaml").write_text("just: data\n", encoding="utf-8")
    done = pytest_run(tmp_path, "quirks", "-v", "--scenario-report-dir", str(tmp_path / "out"))
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "quirks/counts.yaml::quirks/wrong-counts FAILED" in out
    assert "quirks/bad.yaml::quirks/bad FAILED" in out
    assert "not-a-scenario" not in out  # outside the given path: not collected
    assert "destination folder 'INBOX' holds" in out and "expected 99" in out
    assert f"bad scenario file: {area / 'bad.yaml'}: expect.exit: Extra inputs are not permitted" in out
    assert "Traceback" not in out and "runtest" not in out
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert {(r["name"], r["area"]) for r in data["results"]} == {("wrong-counts", "quirks"), ("bad", "quirks")}
    assert data["totals"]["failed"] == 1 and data["totals"]["error"] == 1
