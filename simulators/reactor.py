"""The background Twisted reactor: one daemon thread per process, started on first use.

Simulators run inside the reactor; test code and the scenario runner live in other threads and
call in with ``call(fn, ...)``, which blocks until ``fn``'s result (or Deferred) is ready and
re-raises its error in the caller. ``quirkmail serve`` runs the reactor in the main thread
instead and never starts this one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import reactor as _reactor
from twisted.internet.threads import blockingCallFromThread
from twisted.python.threadable import isInIOThread

T = TypeVar("T")

reactor: Any = _reactor
_lock = threading.Lock()
_thread: threading.Thread | None = None


class ReactorError(RuntimeError):
    """The background reactor could not be started."""


def ensure_running(timeout: float = 10.0) -> None:
    """Start the reactor thread once; later calls return at once."""
    global _thread
    with _lock:
        if reactor.running and _thread is not None:
            return
        if reactor.running:
            return  # someone else runs it (quirkmail serve in the main thread)
        started = threading.Event()
        reactor.callWhenRunning(started.set)
        _thread = threading.Thread(
            target=reactor.run, kwargs={"installSignalHandlers": False}, name="quirkmail-reactor", daemon=True
        )
        _thread.start()
        if not started.wait(timeout):
            raise ReactorError(f"the Twisted reactor did not start within {timeout} s")


def in_reactor_thread() -> bool:
    return isInIOThread() if reactor.running else False


def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` in the reactor thread and wait for its result (Deferreds are waited for)."""
    ensure_running()
    if in_reactor_thread():
        raise ReactorError("call() from the reactor thread would deadlock; call fn directly")
    return blockingCallFromThread(reactor, fn, *args, **kwargs)


def close_listeners(ports: list, factories: list) -> None:
    """Stop listening on ``ports`` and drop the open connections of ``factories`` (each has a
    ``close_connections()`` returning a Deferred), waiting until all of it is done."""
    from twisted.internet import defer

    def shutdown():
        waits = [defer.maybeDeferred(p.stopListening) for p in ports]
        waits += [f.close_connections() for f in factories]
        return defer.DeferredList(waits)

    if ports or factories:
        call(shutdown)
