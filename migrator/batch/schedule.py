"""Which account starts next: at most N accounts at once, at most K per source server, at most D
per destination server (when ``--per-dest-host`` is given), and never two lines of the same
source account together.

The per-server caps are in *accounts*, like a migration service's "concurrent migrations per
endpoint"; each running account then opens its own connections (``--connections``: an IMAP run
holds up to 1 + 2 × connections to its source, 1 + connections to its destination), so a source
server sees at most ``per_host × (1 + 2 × connections)`` of them and a destination server
``per_dest_host × (1 + connections)``. A destination is often the bottleneck (many old servers
into one new one): its cap is separate because its load per account differs and because batches
written before it existed ran their destinations uncapped — without ``--per-dest-host`` they
still do. The destination servers of an account are its mail destination and, when the line
gives one, its PIM destination (``AccountLine.dest_hosts``); roles are counted apart, so a server
that is one account's source and another's destination has one count for each role.
``pick`` is the pure rule; ``Slots`` is the thread-safe gate the batch workers share.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence

from migrator.batch.accounts import AccountLine

DEFAULT_PER_HOST = 4  # accounts of one source server at once (each with up to 1 + 2 × connections)
DEFAULT_PARALLEL = 8  # accounts at once over all servers
DEFAULT_CONNECTIONS = 2  # per account: ≤ 5 source connections, under Dovecot's 10 and Gmail's 15
DEFAULT_RETRY_AFTER = 60.0  # seconds before an account refused for its connection limit is tried again


def pick(pending: Sequence[AccountLine], running_hosts: Counter, running_accounts: set, per_host: int,
         *, due: Mapping[str, float] | None = None, now: float = 0.0,
         running_dests: Counter | None = None, per_dest_host: int | None = None) -> int | None:
    """Index of the first pending account that may start now, or None. File order, but a server
    at its cap does not hold back the accounts of other servers; an account put back for a retry
    waits until its ``due`` time."""
    due = due or {}
    running_dests = running_dests if running_dests is not None else Counter()
    for i, account in enumerate(pending):
        if running_hosts[account.host] < per_host and account.source_account not in running_accounts \
                and due.get(account.id, 0.0) <= now \
                and (per_dest_host is None or all(running_dests[h] < per_dest_host for h in account.dest_hosts)):
            return i
    return None


class Slots:
    """Hands out pending accounts to worker threads under the caps; records the peaks reached."""

    def __init__(self, accounts: Sequence[AccountLine], *, per_host: int, stop: threading.Event,
                 per_dest_host: int | None = None):
        self._pending = list(accounts)
        self._per_host = per_host
        self._per_dest_host = per_dest_host
        self._stop = stop
        self._hosts: Counter = Counter()
        self._dests: Counter = Counter()  # running accounts per destination server (mail or PIM)
        self._accounts: set = set()
        self._due: dict[str, float] = {}  # account id → monotonic time before which it may not start
        self._cond = threading.Condition()
        self.peak_per_host: Counter = Counter()  # most accounts of one source server that ran together
        self.peak_per_dest_host: Counter = Counter()  # the same per destination server (capped or not)
        self.peak_running = 0

    def take(self) -> AccountLine | None:
        """The next account to run (blocks while every eligible one is held back by a cap or a
        retry delay); None when the batch is stopping, or nothing is pending and nothing running
        (a running account may still be put back for a retry)."""
        with self._cond:
            while True:
                if self._stop.is_set() or not (self._pending or self._accounts):
                    return None
                now = time.monotonic()
                i = pick(self._pending, self._hosts, self._accounts, self._per_host, due=self._due, now=now,
                         running_dests=self._dests, per_dest_host=self._per_dest_host)
                if i is not None:
                    account = self._pending.pop(i)
                    self._hosts[account.host] += 1
                    for h in account.dest_hosts:
                        self._dests[h] += 1
                        self.peak_per_dest_host[h] = max(self.peak_per_dest_host[h], self._dests[h])
                    self._accounts.add(account.source_account)
                    self.peak_per_host[account.host] = max(self.peak_per_host[account.host], self._hosts[account.host])
                    self.peak_running = max(self.peak_running, len(self._accounts))
                    return account
                waits = [self._due[a.id] - now for a in self._pending if self._due.get(a.id, 0.0) > now]
                self._cond.wait(min([0.5, *waits]))  # or until release(); the timeout notices a stop

    def release(self, account: AccountLine, *, retry_in: float | None = None) -> None:
        """The account's run ended; with ``retry_in`` it is put back, to start again no sooner
        than that many seconds from now (in the same step, so no worker quits in between)."""
        with self._cond:
            self._hosts[account.host] -= 1
            for h in account.dest_hosts:
                self._dests[h] -= 1
            self._accounts.discard(account.source_account)
            if retry_in is not None:
                self._due[account.id] = time.monotonic() + retry_in
                self._pending.append(account)
            self._cond.notify_all()

    def left(self) -> list[AccountLine]:
        """Accounts never started (the batch was stopped)."""
        with self._cond:
            return list(self._pending)
