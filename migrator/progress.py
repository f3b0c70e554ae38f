"""Progress reporting: the ``ProgressSink`` protocol the engine calls, and a rich progress bar.

The engine calls a sink from its folder worker threads; implementations must be thread-safe.
An exception raised by a sink stops the run cleanly (reported as aborted, state kept), which is
also how tests simulate a crash after N items.
"""

from __future__ import annotations

import threading
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text


class ProgressSink(Protocol):
    def start(self, plan: list[tuple[str, int]]) -> None:
        """The folders about to be migrated: (source path, messages in it per STATUS)."""

    def advance(self, folder: str, messages: int, nbytes: int) -> None:
        """``messages`` more of ``folder`` are settled: copied (``nbytes`` of them), found present,
        or skipped."""

    def finish(self) -> None: ...


class NullProgress:
    def start(self, plan: list[tuple[str, int]]) -> None:
        pass

    def advance(self, folder: str, messages: int, nbytes: int) -> None:
        pass

    def finish(self) -> None:
        pass


class MessageRateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        if task.fields.get("rate") is False:  # a bar counting something else (the batch's accounts)
            return Text("")
        return Text(f"{task.speed or 0:.0f} msg/s", style="progress.data.speed")


def message_bars(console: Console | None) -> Progress:
    """The bar style of every quirkmail progress display: name, bar, n/total, msg/s, elapsed."""
    return Progress(
        TextColumn("{task.description}", justify="left"),
        BarColumn(),
        MofNCompleteColumn(),
        MessageRateColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


class RichProgress:
    """One bar per folder plus a total with message counts, byte rate and elapsed time."""

    def __init__(self, console: Console | None = None):
        self._progress = message_bars(console)
        self._tasks: dict[str, TaskID] = {}
        self._total: TaskID | None = None
        self._lock = threading.Lock()

    def start(self, plan: list[tuple[str, int]]) -> None:
        self._progress.start()
        self._total = self._progress.add_task("[bold]all folders", total=sum(n for _, n in plan))
        for folder, n in plan:
            if n:
                self._tasks[folder] = self._progress.add_task(folder, total=n)

    def advance(self, folder: str, messages: int, nbytes: int) -> None:
        with self._lock:
            if folder in self._tasks:
                self._progress.advance(self._tasks[folder], messages)
            if self._total is not None:
                self._progress.advance(self._total, messages)

    def finish(self) -> None:
        self._progress.stop()
