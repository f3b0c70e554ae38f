"""A migration run in a fresh child process, with the child's peak RSS: memory figures that the
parent's own allocations (a simulator, a test session) cannot blur.

The child is *spawned* (a new interpreter, nothing inherited), imports the engine, notes its peak
RSS so far (the baseline: interpreter + imports), runs ``migrate`` and reports the peak again
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, which Linux gives in KiB). The password crosses
the process boundary over multiprocessing's pipe, never on a command line.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
from dataclasses import dataclass

CHILD_TIMEOUT = 3600.0


@dataclass(frozen=True)
class ChildRun:
    baseline_kib: int  # peak RSS after the imports, before migrating
    peak_kib: int  # peak RSS over the whole child
    seconds: float  # migrate() wall time
    copied: int
    failed: int
    skipped: int

    @property
    def growth_kib(self) -> int:
        return self.peak_kib - self.baseline_kib


class ChildFailed(RuntimeError):
    """The child process died or raised; the message carries its error."""


def peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child(source_url: str, dest_url: str, password: str, options_json: str, out: mp.Queue) -> None:
    try:
        from migrator.engine import MigrationOptions, migrate
        from migrator.urls import Endpoint, Secret, ServerURL

        baseline = peak_kib()
        options = MigrationOptions.model_validate_json(options_json)
        secret = Secret(password)
        t0 = time.perf_counter()
        report = migrate(Endpoint(ServerURL.parse(source_url), secret), Endpoint(ServerURL.parse(dest_url), secret),
                         options)
        seconds = time.perf_counter() - t0
        out.put(ChildRun(baseline, peak_kib(), seconds, report.copied, report.failed, report.skipped_count))
    except BaseException as exc:  # reported to the parent, which raises ChildFailed
        out.put(f"{type(exc).__name__}: {exc}")


def migrate_in_child(source_url: str, dest_url: str, password: str, options_json: str,
                     timeout: float = CHILD_TIMEOUT) -> ChildRun:
    """Run ``migrate`` (both sides log in with ``password``) in a spawned child; its figures."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=_child, args=(source_url, dest_url, password, options_json, out), daemon=True)
    child.start()
    try:
        result = out.get(timeout=timeout)
    except Exception:
        raise ChildFailed(f"migration child gave no result within {timeout:.0f} s (exit code {child.exitcode})") from None
    finally:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
    if isinstance(result, str):
        raise ChildFailed(f"migration child failed: {result}")
    return result
