"""getmail6 with a child reaper that cannot lose its child; run it with getmail's own interpreter.

getmail6 (6.18.11; upstream issues #52, #226, #245) forks a child for every delivery and learns
that the child ended from a SIGCHLD handler it installs only *after* fork(), which then notifies
a Condition nobody may be waiting on yet. When the child finishes first (the parent preempted
right after fork, as on a loaded machine) the signal or the notification is lost: the message is
already in the Maildir, and the parent waits out its ``timeout`` (180 s by default), then fails
with "waiting child pid N timed out". Here the parent reaps the child itself with waitpid() and
getmail's own status checks run on the result; nothing on the POP3 side changes.

    getmail_reaper.py [--fork-delay S] [--as-is] GETMAIL-ARGUMENTS...

--fork-delay S   the parent sleeps S seconds after every fork (a preempted parent, on demand)
--as-is          keep getmail's own reaper (shows the race)
"""

from __future__ import annotations

import os
import runpy
import shutil
import sys
import time

from getmailcore.baseclasses import ForkingBase

_getmail_checks = ForkingBase._wait_for_child  # waits on its Condition, then checks the status


class _Reaped:
    """Stands in for getmail's Condition once the child is reaped: nothing is left to wait for."""

    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass

    def wait(self, timeout: float | None = None) -> bool:
        return True


def _prepare_child(self) -> None:
    """No SIGCHLD handler: ``_wait_for_child`` reaps the child itself."""


def _wait_for_child(self, childpid: int) -> int:
    pid, status = os.waitpid(childpid, 0)
    # getmail's private fields (name-mangled), as its own SIGCHLD handler would have set them.
    self._ForkingBase__child_pid, self._ForkingBase__child_status = pid, status
    self._ForkingBase__child_exited = _Reaped()
    return _getmail_checks(self, childpid)


def _delay_parent_after_fork(seconds: float) -> None:
    fork = os.fork

    def delayed_fork() -> int:
        pid = fork()
        if pid:
            time.sleep(seconds)
        return pid

    os.fork = delayed_fork


def main(argv: list[str]) -> None:
    as_is = "--as-is" in argv
    argv = [a for a in argv if a != "--as-is"]
    if argv[:1] == ["--fork-delay"]:
        _delay_parent_after_fork(float(argv[1]))
        argv = argv[2:]
    if not as_is:
        ForkingBase._prepare_child = _prepare_child
        ForkingBase._wait_for_child = _wait_for_child
    getmail = shutil.which("getmail")
    sys.argv = [getmail, *argv]
    runpy.run_path(getmail, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
