"""Batch progress: an overall bar plus one bar per running account (rich), or nothing.

``AccountSink`` is the engine's ``ProgressSink`` for one account: it feeds the account's bar and
its importing log, and raises ``BatchStopped`` once the batch is stopping, which ends that
account's run cleanly (aborted, checkpoint kept) at its next batch of messages.
"""

from __future__ import annotations

import threading
from typing import Protocol

from rich.console import Console
from rich.progress import TaskID

from migrator.batch.journal import Journal
from migrator.batch.report import AccountResult
from migrator.progress import message_bars


class BatchStopped(Exception):
    """Raised inside an account's run when the batch is stopping (Ctrl-C)."""


class BatchProgress(Protocol):
    def begin(self, accounts: int, done_earlier: int) -> None: ...
    def account_started(self, account_id: str) -> None: ...
    def account_plan(self, account_id: str, messages: int) -> None: ...
    def advance(self, account_id: str, messages: int) -> None: ...
    def account_done(self, result: AccountResult) -> None: ...
    def account_deferred(self, result: AccountResult, seconds: float) -> None: ...  # refused for now: retried
    def end(self) -> None: ...


class NullBatchProgress:
    def begin(self, accounts: int, done_earlier: int) -> None:
        pass

    def account_started(self, account_id: str) -> None:
        pass

    def account_plan(self, account_id: str, messages: int) -> None:
        pass

    def advance(self, account_id: str, messages: int) -> None:
        pass

    def account_done(self, result: AccountResult) -> None:
        pass

    def account_deferred(self, result: AccountResult, seconds: float) -> None:
        pass

    def end(self) -> None:
        pass


class RichBatchProgress:
    """The accounts bar, a messages total, and a bar per running account; a finished account's
    bar is replaced by one printed line."""

    def __init__(self, console: Console):
        self._progress = message_bars(console)
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskID] = {}
        self._accounts: TaskID | None = None
        self._messages: TaskID | None = None

    def begin(self, accounts: int, done_earlier: int) -> None:
        self._progress.start()
        self._accounts = self._progress.add_task("[bold]accounts", total=accounts, completed=done_earlier, rate=False)
        self._messages = self._progress.add_task("[bold]messages", total=0)

    def account_started(self, account_id: str) -> None:
        with self._lock:
            self._tasks[account_id] = self._progress.add_task(account_id, total=None)

    def account_plan(self, account_id: str, messages: int) -> None:
        with self._lock:
            self._progress.update(self._tasks[account_id], total=messages)
            total = self._progress.tasks[self._messages].total or 0
            self._progress.update(self._messages, total=total + messages)

    def advance(self, account_id: str, messages: int) -> None:
        with self._lock:
            self._progress.advance(self._tasks[account_id], messages)
            self._progress.advance(self._messages, messages)

    def account_done(self, result: AccountResult) -> None:
        self._drop(result.id)
        with self._lock:
            self._progress.advance(self._accounts, 1)
        mark = "✓" if result.finished else "✗"
        self._say(f"{mark} {result.id}: {result.outcome}, {result.copied} copied, {result.already_present} present"
                  + (f" — {result.error}" if result.error else ""))

    def account_deferred(self, result: AccountResult, seconds: float) -> None:
        self._drop(result.id)
        self._say(f"↻ {result.id}: {result.error} — trying again in {seconds:.0f} s")

    def _drop(self, account_id: str) -> None:
        with self._lock:
            task = self._tasks.pop(account_id, None)
            if task is not None:
                self._progress.remove_task(task)

    def _say(self, line: str) -> None:
        self._progress.console.print(line, markup=False, highlight=False)

    def end(self) -> None:
        self._progress.stop()


class AccountSink:
    """``migrator.progress.ProgressSink`` for one account of the batch."""

    def __init__(self, account_id: str, progress: BatchProgress, journal: Journal, stop: threading.Event):
        self._id, self._progress, self._journal, self._stop = account_id, progress, journal, stop

    def start(self, plan: list[tuple[str, int]]) -> None:
        self._journal.event("plan", folders=[{"folder": f, "messages": n} for f, n in plan])
        self._progress.account_plan(self._id, sum(n for _, n in plan))

    def advance(self, folder: str, messages: int, nbytes: int) -> None:
        self._journal.event("progress", folder=folder, messages=messages, bytes=nbytes)
        self._progress.advance(self._id, messages)
        if self._stop.is_set():
            raise BatchStopped("the batch is stopping")

    def finish(self) -> None:
        pass
