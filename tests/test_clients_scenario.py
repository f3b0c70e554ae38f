"""The scenarios of the ``clients`` area: a real client as the migration command, judged by the
same verifier as our engine. Beyond the file's own expectations, the one difference in the copies
that landed must be mbsync's X-TUID line: 22 bytes more per message, dates and flags intact."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from scenarios.model import load_scenario
from scenarios.runner import run_scenario

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios/library/clients/mbsync-from-m365-throttled.yaml"
_SIZES = re.compile(r"(\d+) bytes at the source, (\d+) at the destination")


@pytest.mark.peer
def test_mbsync_from_throttled_m365_leaves_one_behind_and_tags_the_rest():
    if shutil.which("mbsync") is None:
        pytest.skip("mbsync is not installed")
    result = run_scenario(load_scenario(SCENARIO))
    assert result.error is None, result.error
    if result.skipped:
        pytest.skip(result.skipped)
    assert result.passed, "\n".join(result.failures)
    assert "NO Request is throttled. Suggested Backoff Time: 299609 milliseconds" in result.runs[0].error
    verify = result.verify
    assert verify.total("date_mismatches") == verify.total("flag_mismatches") == 0
    grown = [int(b) - int(a) for f in verify.folders for ref in f.byte_mismatches for a, b in _SIZES.findall(ref.detail)]
    assert grown == [len(b"X-TUID: 0123456789ab\r\n")] * 19
