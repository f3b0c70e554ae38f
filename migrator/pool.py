"""Worker plumbing for the engine: per-thread connections and a queue of jobs run by threads.

``ConnectionPool`` gives each thread its own source and destination connection (imapclient
connections are not thread-safe), opened on first use and reopened after a loss. ``run_workers``
runs jobs in order on N threads; a thread that cannot open its connections because the server's
per-account limit is reached hands its job back and retires, so a run goes on with fewer
connections instead of failing (gmail-too-many-connections, dovecot-userip-limit).
"""

from __future__ import annotations

import collections
import functools
import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from migrator.errors import MigratorError, TooManyConnections
from migrator.sinks.imap import ImapSink
from migrator.sources.imap import ImapSource
from migrator.timeline import Timeline
from migrator.timeouts import FolderTimeouts
from migrator.urls import Endpoint

log = logging.getLogger(__name__)
Job = TypeVar("Job")


class ConnectionPool:
    """Thread-local source and destination connections, opened on first use, reopened after a loss.

    Worker threads use both (analysis) or the destination only (copying); fetch-ahead threads use
    a source connection only, so reading batch n+1 overlaps writing batch n.
    """

    def __init__(self, source: Endpoint, dest: Endpoint, *, timeouts: FolderTimeouts | None = None,
                 timeline: Timeline | None = None):
        self._endpoints = {"source": (source, functools.partial(ImapSource, timeouts=timeouts, timeline=timeline)),
                           "sink": (dest, functools.partial(ImapSink, timeline=timeline))}
        self._local = threading.local()
        self._all: list[ImapSource | ImapSink] = []
        self._lock = threading.Lock()

    def _get(self, role: str):
        conn = getattr(self._local, role, None)
        if conn is None:
            endpoint, cls = self._endpoints[role]
            conn = cls(endpoint)
            setattr(self._local, role, conn)
            with self._lock:
                self._all.append(conn)
        return conn

    def source(self) -> ImapSource:
        return self._get("source")

    def sink(self) -> ImapSink:
        return self._get("sink")

    def renew(self, role: str) -> str | None:
        """Drop this thread's ``role`` connection (it is reopened on next use); returns the BYE
        text the old one heard before it was lost, if any."""
        conn = getattr(self._local, role, None)
        if conn is None:
            return None
        bye = conn.heard_bye()
        conn.close()
        setattr(self._local, role, None)
        return bye

    def close_all(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


def run_workers(
    jobs: list[Job],
    workers: int,
    work: Callable[[Job], None],
    *,
    connections: ConnectionPool,
    stop: threading.Event,
    fail: Callable[[Job, Exception], None],
    retire: Callable[[Exception, bool], None],
    interrupted: Callable[[], None],
) -> None:
    """Run ``work`` per job on ``workers`` threads pulling from one queue, in the given order.

    Errors are handed to ``fail`` with their job; ``retire(exc, last)`` is told when a thread
    gives up for a connection limit (``last``: none is left). Ctrl-C calls ``interrupted`` (which
    should set ``stop``), waits for the threads to finish their current step and re-raises.
    """
    queue = collections.deque(jobs)
    lock = threading.Lock()
    active = [workers]

    def worker() -> None:
        while not stop.is_set():
            with lock:
                if not queue:
                    return
                job = queue.popleft()
            try:
                connections.source(), connections.sink()
            except TooManyConnections as exc:
                connections.renew("source"), connections.renew("sink")
                with lock:
                    queue.appendleft(job)
                    active[0] -= 1
                    last = active[0] == 0
                retire(exc, last)
                return
            except MigratorError as exc:
                fail(job, exc)
                continue
            try:
                work(job)
            except MigratorError as exc:
                fail(job, exc)
            except Exception as exc:  # a bug must not hide the other jobs' results
                log.exception("a migration job failed with an unexpected error")
                fail(job, exc)

    threads = [threading.Thread(target=worker, name=f"migrate-{i}", daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)  # a timed join keeps Ctrl-C deliverable to the main thread
    except KeyboardInterrupt:
        interrupted()
        for t in threads:
            t.join()
        raise
