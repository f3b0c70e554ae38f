"""The GitHub Actions example in docs/ci/ stays true: it parses, installs the way the README does,
and its quirkmail command line is one our parser accepts, writing the reports it then publishes."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from scenarios.cli import build_parser

WORKFLOW = Path(__file__).resolve().parent.parent / "docs" / "ci" / "github-actions.yml"


def steps() -> list[dict]:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]["scenarios"]["steps"]


def test_the_example_installs_like_the_readme_and_runs_a_valid_command_line():
    runs = "\n".join(s.get("run", "") for s in steps())
    assert "bash scripts/install-peers.sh" in runs and "pip install -e ." in runs
    line = next(l for l in runs.splitlines() if l.strip().startswith("quirkmail run"))
    args = build_parser().parse_args(shlex.split(line)[1:])
    assert args.workers == "2"
    report_dir = Path(args.report_dir)
    published = [s["with"] for s in steps() if "with" in s and ("report_paths" in s["with"] or "path" in s["with"])]
    assert {p.get("report_paths") or p.get("path") for p in published} == {
        str(report_dir / "junit.xml"), f"{report_dir}/"}
