"""A terminal mail client (neomutt) driven in a detached tmux session, read back from the screen.

``Tmux`` runs one program in its own tmux server (a private socket in the test's tmp dir, so no
other tmux is touched and ``close`` ends exactly ours); ``wait_for`` polls ``capture-pane`` until a
condition holds or a deadline passes — no fixed sleeps — and fails with the last screen.

``neomutt_rc`` writes a muttrc that reads no user configuration (neomutt runs with ``-n -F``,
HOME is a tmp dir): the server's folder over implicit TLS to ``localhost`` (the simulator's
certificate names it) with the world's CA as the only trusted certificate, and the password in
a separate 0600 file the muttrc sources — never in argv, the environment or a log.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from simulators.launcher import ServerHandle
from tests.clients_support import HOST, USER

STATUS = "[Msgs:{count}]"  # what our status_format shows for a folder's message count
WIDTH, HEIGHT = 200, 40


class Tmux:
    def __init__(self, work: Path, command: list[str], *, env: dict[str, str]):
        if shutil.which("tmux") is None:
            pytest.skip("tmux is not installed (Debian package tmux)")
        self.socket = work / "tmux.sock"
        self.screen = ""
        # -u: UTF-8 output (subjects in French, German, Japanese); one window of a fixed size
        self._tmux("-u", "new-session", "-d", "-s", "t", "-x", str(WIDTH), "-y", str(HEIGHT),
                   subprocess.list2cmdline(command), env=env)

    def _tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True, text=True,
                              timeout=10, env=env)
        if done.returncode:
            raise RuntimeError(f"tmux {args[0]}: {done.stderr.strip()}")
        return done.stdout

    def capture(self) -> str:
        self.screen = self._tmux("capture-pane", "-p", "-t", "t")
        return self.screen

    def keys(self, *keys: str, literal: bool = False) -> None:
        """tmux key names ("Enter", "Escape") or, with ``literal``, text typed as is."""
        self._tmux("send-keys", "-t", "t", *(("-l",) if literal else ()), *keys)

    def wait_for(self, what: str, ready: Callable[[str], bool], *, within: float = 20.0) -> str:
        """The screen once ``ready(screen)`` holds; fails naming ``what`` and showing the last screen."""
        deadline = time.monotonic() + within
        while True:
            screen = self.capture()
            if ready(screen):
                return screen
            if time.monotonic() > deadline:
                pytest.fail(f"neomutt never showed {what} within {within:g} s; last screen:\n{screen}")
            time.sleep(0.1)

    def close(self) -> None:
        """Kill our tmux server (and neomutt in it); quiet when it is gone already."""
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], capture_output=True, timeout=10)


def neomutt_rc(work: Path, handle: ServerHandle, cafile: Path, password: str, *, folder: str = "INBOX") -> Path:
    secret = work / "password.rc"
    secret.write_text(f'set imap_pass="{password}"\n')
    secret.chmod(0o600)
    rc = work / "muttrc"
    rc.write_text(
        f"set imap_user={USER}\nsource {secret}\n"
        f"set folder=imaps://{HOST}:{handle.port}/\nset spoolfile=+{folder}\n"
        # The simulator's CA, and nothing else, is trusted (GnuTLS and OpenSSL builds alike).
        f"set certificate_file={cafile}\nset ssl_ca_certificates_file={cafile}\nset ssl_force_tls=yes\n"
        'set header_cache=""\nset message_cachedir=""\n'
        # Newest first by INTERNALDATE; one line per message: number, sender address, subject.
        'set sort=reverse-date-received\nset index_format="%4C|%-30.30a|%s"\n'
        f'set status_format="[%f] {STATUS.format(count="%m")}"\n'
        "set imap_check_subscribed=no\nset mail_check_stats=no\nset wait_key=no\nset quit=yes\nset beep=no\n"
        "set help=no\nset move=no\nset mark_old=no\n"
    )
    return rc


def start_neomutt(work: Path, rc: Path) -> Tmux:
    if shutil.which("neomutt") is None:
        pytest.skip("neomutt is not installed (Debian package neomutt)")
    home = work / "home"
    home.mkdir(exist_ok=True)
    # Never nested in a tmux the tests run in; and the window's size, not a COLUMNS/LINES that
    # pytest or a CI runner exported (neomutt would draw 80 columns inside a 200-column pane).
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "COLUMNS", "LINES")}
    env |= {"HOME": str(home), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "xterm-256color"}
    return Tmux(work, ["neomutt", "-n", "-F", str(rc)], env=env)
