"""Shared test set-up.

Peer tests (``@pytest.mark.peer``) skip with a reason when a real peer (Dovecot, mbsync …) is not
installed, so a developer's laptop still runs the rest. CI installs every peer: there (``CI`` set,
as CI sets it) a skipped peer test is turned into a failure, so a missing install step cannot hide
behind a green run.
"""

import os

import pytest


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if _ci() and report.skipped and item.get_closest_marker("peer") is not None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"peer test skipped in CI, where every peer must be installed: {reason}"
