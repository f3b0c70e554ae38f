"""The long fuzz run: every tests/test_fuzz_*.py property with LONG_FACTOR times its CI inputs.

    python benchmarks/fuzz_long.py [--workers 2] [--timeout SECONDS] [-k EXPR] [--out reports/bench/fuzz.json]

Runs pytest with ``QUIRKMAIL_FUZZ=long`` (fresh random inputs each run, see tests/fuzz_profiles.py)
and writes the inputs each target ran, the wall time and the failing tests (a failure is a bug
found: hypothesis prints its minimal example in the pytest output, which is kept beside the JSON).
``--timeout`` stops the run (its process group) after that long; the inputs counted so far are
still written (``"completed": false``), since workers flush their counts as they go.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=None)
    parser.add_argument("-k", dest="select", default=None, help="pytest -k: run only these properties")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "fuzz.json")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, QUIRKMAIL_FUZZ="long", QUIRKMAIL_FUZZ_COUNTS=tmp, PYTHONPATH=str(ROOT))
        junit = Path(tmp) / "junit.xml"
        files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_fuzz_*.py"))
        started = datetime.now(timezone.utc)
        t0 = time.monotonic()
        log = args.out.with_suffix(".log")
        with log.open("w", encoding="utf-8") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pytest", *files, "-q", "-n", str(args.workers), "-p", "no:cacheprovider",
                 f"--junitxml={junit}", *(["-k", args.select] if args.select else [])],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
            try:
                proc.wait(timeout=args.timeout)
                completed = True
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGTERM)  # pytest and its xdist workers, all ours
                proc.wait()
                completed = False
        seconds = time.monotonic() - t0
        runs: Counter[str] = Counter()
        for f in Path(tmp).glob("runs-*.json"):
            runs.update(json.loads(f.read_text()))
        cases = ET.parse(junit).getroot().iter("testcase") if junit.exists() else []
        failures = [
            {"test": f"{c.get('classname')}::{c.get('name')}", "message": (bad.get("message") or "")[:500]}
            for c in cases for bad in list(c.findall("failure")) + list(c.findall("error"))
        ]
    result = {
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "completed": completed,
        "workers": args.workers,
        "inputs_per_target": dict(sorted(runs.items())),
        "inputs_total": sum(runs.values()),
        "failures": failures,
        "pytest_exit": proc.returncode,
        "log": str(log.relative_to(ROOT)) if log.is_relative_to(ROOT) else str(log),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("seconds", "inputs_total", "pytest_exit")}), f"→ {args.out}")
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
