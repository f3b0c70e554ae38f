"""pytest plugin: every ``*.yaml`` under the paths given to pytest is one scenario test item.

Load it with ``-p scenarios.plugin`` (``quirkmail run`` does). An item runs its scenario with
``scenarios.runner``; a broken expectation is reported as its sentences, not as a traceback.
Each item stores its ``ScenarioResult`` JSON in ``user_properties``, which pytest-xdist carries
from the workers to the controller; there, with ``--scenario-report-dir DIR``, the plugin writes
``report.json`` and ``junit.xml`` at the end of the session. With ``--scenario-record-dir DIR``
each scenario's engine sessions are recorded into ``DIR/<area>/<file stem>/`` (``run --record``).
"""

from __future__ import annotations

import json
import os
import traceback
from pathlib import Path

import pytest

from scenarios import reports
from scenarios.model import ScenarioError, load_scenario
from scenarios.runner import ScenarioResult, run_scenario

RESULT_KEY = "scenario_result"
SUFFIXES = (".yaml", ".yml")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("quirkmail scenarios")
    group.addoption(
        "--scenario-report-dir",
        default=None,
        type=Path,
        help="write report.json and junit.xml of the scenario results into this folder",
    )
    group.addoption(
        "--scenario-record-dir",
        default=None,
        type=Path,
        help="record each scenario's engine sessions as transcripts into DIR/<area>/<scenario file>/",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(ResultCollector(config), "quirkmail-scenario-results")


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if file_path.suffix in SUFFIXES and _under_given_paths(file_path, parent.config):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


def _under_given_paths(file_path: Path, config: pytest.Config) -> bool:
    # Only what the user pointed at: YAML elsewhere in the tree (profiles, CI files) is not a scenario.
    for arg in config.args:
        given = Path(arg.split("::")[0]).resolve()
        if file_path.resolve() == given or given in file_path.resolve().parents:
            return True
    return False


class ScenarioFile(pytest.File):
    def collect(self):
        area = self.path.parent.name
        name = self.path.stem
        try:  # the file's own name, when it states one
            name = load_scenario(self.path).name
        except ScenarioError:
            pass  # reported when the item runs, with the file and field
        yield ScenarioItem.from_parent(self, name=f"{area}/{name}")


class ScenarioFailed(Exception):
    """The scenario ran and some expectations did not hold."""

    def __init__(self, result: ScenarioResult):
        super().__init__("\n".join(result.failures))
        self.result = result


class ScenarioItem(pytest.Item):
    def runtest(self) -> None:
        try:
            scenario = load_scenario(self.path)
            result = run_scenario(scenario, record_dir=self._record_dir())
            self._relative_transcripts(result)
        except ScenarioError as exc:
            self._stash(self._errored(str(exc)))
            raise
        except Exception:
            self._stash(self._errored(traceback.format_exc()))
            raise
        gap = scenario.known_gap
        if gap and not result.skipped and not result.error:
            if result.passed:  # strict, like pytest's xfail(strict=True): a stale marker hides nothing
                result.passed = False
                result.failures = [f"passes although it states the known gap {gap!r}: remove its known_gap line"]
            else:
                result.known_gap = gap
        self._stash(result)
        if result.skipped:
            pytest.skip(result.skipped)
        if result.known_gap:
            pytest.xfail(f"known gap: {result.known_gap}")
        if not result.passed:
            raise ScenarioFailed(result)

    def _record_dir(self) -> Path | None:
        root = self.config.getoption("scenario_record_dir")
        return None if root is None else Path(root).resolve() / self.path.parent.name / self.path.stem

    def _relative_transcripts(self, result: ScenarioResult) -> None:
        """Paths relative to report.json's folder, so the reports link them wherever they are moved."""
        report_dir = self.config.getoption("scenario_report_dir")
        if report_dir is not None:
            base = Path(report_dir).resolve()
            result.transcripts = [os.path.relpath(p, base) for p in result.transcripts]

    def _errored(self, error: str) -> ScenarioResult:
        area, _, name = self.name.partition("/")
        return ScenarioResult(name=name, area=area, file=str(self.path), passed=False, error=error)

    def _stash(self, result: ScenarioResult) -> None:
        self.user_properties.append((RESULT_KEY, result.model_dump_json()))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ScenarioFailed):
            result = excinfo.value.result
            lines = [f"scenario {result.name} ({result.file}) failed:"]
            lines += [f"  - {f}" for f in result.failures]
            if result.verify is not None:
                lines += ["", result.verify.summary()]
            return "\n".join(lines)
        if isinstance(excinfo.value, ScenarioError):
            return f"bad scenario file: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"scenario {self.name}"


class ResultCollector:
    """Gathers the results on the controller (xdist workers' reports arrive there too)."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.results: list[ScenarioResult] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":  # one result per item
            return
        for key, value in report.user_properties:
            if key == RESULT_KEY:
                self.results.append(ScenarioResult.model_validate(json.loads(value)))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        report_dir = self.config.getoption("scenario_report_dir")
        if report_dir is None or hasattr(self.config, "workerinput"):
            return  # no reports asked for, or an xdist worker (the controller writes them)
        reports.write_all(self.results, Path(report_dir))
