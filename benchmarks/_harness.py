"""What the benchmark scripts share: the simulator in a child process, a throwaway Dovecot with
its users, timing, and the JSON they write.

    with simulator_process(serve_imap, spec.model_dump_json(), password) as sim:   # spawned child
        port = sim.info["port"]
    # serve_imap(spec_json, password, ready, stop) runs in the child: build a store, then
    # serve_world(store, profile, lambda world: {"port": world.start_imap().port}, ready, stop)

The simulator runs in its own spawned process so the server and the engine each get a core; the
child puts one dict on ``ready`` when it serves and returns once ``stop`` is set.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPAWN = mp.get_context("spawn")  # a fresh interpreter: no reactor thread or imports inherited


# Timing --------------------------------------------------------------------------------------


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def figures(seconds: float, messages: int, nbytes: int) -> dict:
    return {
        "seconds": round(seconds, 3),
        "msg_per_s": round(messages / seconds, 1),
        "mb_per_s": round(nbytes / 1e6 / seconds, 2),
    }


def write_report(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


# The simulator's process ---------------------------------------------------------------------


@dataclass
class SimulatorProcess:
    info: dict  # what the child put on ``ready``
    process: mp.process.BaseProcess
    _stop: object

    def stop(self) -> None:
        """Tell the child to stop serving (it may still send results afterwards)."""
        self._stop.set()


@contextmanager
def simulator_process(
    target: Callable, *args: object, ready_timeout: float = 120.0, join_timeout: float = 10.0
) -> Iterator[SimulatorProcess]:
    """Run ``target(*args, ready, stop)`` in a spawned child until the block ends."""
    ready, stop = SPAWN.Queue(), SPAWN.Event()
    child = SPAWN.Process(target=target, args=(*args, ready, stop), daemon=True)
    child.start()
    try:
        yield SimulatorProcess(ready.get(timeout=ready_timeout), child, stop)
    finally:
        stop.set()
        child.join(timeout=join_timeout)


def populated(user: str, password: str, spec_json: str, profile):
    """Child side: a store with one account filled from a ``FixtureSpec`` (JSON); (store, account)."""
    from simulators.fixtures import FixtureSpec, populate
    from simulators.store import Store

    store = Store()
    account = store.add_account(user, password)
    populate(account, FixtureSpec.model_validate_json(spec_json), profile)
    return store, account


def serve_world(store, profile, start: Callable[[object], dict], ready, stop) -> None:
    """Child side: serve ``store`` in a SimulatorWorld; ``start(world)`` starts its fronts and says
    what goes on ``ready``; returns when ``stop`` is set."""
    from simulators.launcher import SimulatorWorld

    with SimulatorWorld(store, profile) as world:
        ready.put(start(world))
        stop.wait()


# Dovecot -------------------------------------------------------------------------------------


def add_storage_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", choices=("tmpfs", "disk"), default="tmpfs", help="where Dovecot keeps its mail")


def use_storage(storage: str) -> None:
    """``tmpfs``: peers keep their mail under /dev/shm (DovecotServer and RadicaleServer make their
    directories with tempfile.mkdtemp). On disk Dovecot fsyncs every saved message, and that, not
    the engines, then sets the pace."""
    if storage == "tmpfs":
        tempfile.tempdir = "/dev/shm"


def unavailable(bench: str, *peers) -> bool:
    """Print why a peer (a class with ``availability()``) cannot run; True when one cannot."""
    for peer in peers:
        reason = peer.availability()
        if reason:
            print(f"{bench}: {peer.__name__} unavailable: {reason}", file=sys.stderr)
            return True
    return False


@contextmanager
def dovecot_with_users(users: Iterable[str], password: str) -> Iterator:
    """A throwaway Dovecot with these users (one password), the last one able to log in."""
    from scenarios.peers.dovecot import DovecotServer

    users = list(users)
    with DovecotServer() as dovecot:
        for user in users:
            dovecot.add_user(user, password)
        wait_for_login(dovecot, users[-1], password)
        yield dovecot


def wait_for_login(dovecot, user: str, password: str) -> None:
    from imapclient import IMAPClient

    deadline = time.monotonic() + 5  # Dovecot re-reads its users file when the mtime second moves
    while True:
        try:
            with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=5) as c:
                c.login(user, password)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
