"""The POP3 command engine: one ``Pop3Session`` per connection, bytes in, bytes out, no sockets.

    session = Pop3Session(store, profile, quirks)
    out = session.start()                     # [b"+OK Dovecot ready.\\r\\n"]
    out = session.receive_data(b"USER alice\\r\\nPASS secret\\r\\n")
    # out: bytes to write, and the signals START_TLS / CLOSE, in order

The adapter (``simulators.pop3.server``) writes the bytes, starts TLS or closes when told, calls
``timeout()`` for the autologout timer and ``connection_lost()`` when the peer goes away (which
deletes nothing: only QUIT enters the UPDATE state, RFC 1939 §6).

Covered: RFC 1939 (USER/PASS, APOP, STAT, LIST, RETR, DELE, NOOP, RSET, QUIT, TOP, UIDL), RFC 2449
CAPA (the lists come from ``profile.pop3``, before and after login), RFC 2595 STLS, RFC 5034 AUTH
with PLAIN, LOGIN and XOAUTH2, with an initial response or after a ``+ `` continuation (the
latter is Microsoft's two-step XOAUTH2: ``AUTH XOAUTH2``, then the token on the next line). The
account's password doubles as its valid XOAUTH2 bearer token. AUTH accepts the mechanisms the
profile's ``SASL`` capability lists; TOP and UIDL exist only while advertised after login.

Replies word for word as Dovecot 2.3's POP3 (the ``generic`` profile is compared with a real one),
including its argument errors ("-ERR Noise after message number: ..."), its limit of 3 unknown
commands in a row before login and 20 errors in a row after, its line length limits, and no
maildrop locking (Dovecot's default
``pop3_lock_session = no``: two sessions may hold the same INBOX). What the maildrop shows and how
messages go on the wire: ``simulators.pop3.maildrop``.

Quirks (``Quirk``'s ``pop3_*`` hooks) are asked for the greeting, the capabilities, before each
command, at login, for UIDL values and around RETR.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import itertools
import os
import time
from collections.abc import Callable, Iterable

from simulators.imap.sasl import SaslExchange
from simulators.pop3.maildrop import Maildrop, multiline, top
from simulators.profiles import Profile
from simulators.quirks import Quirk, adjusted
from simulators.session import CLOSE, START_TLS, FrontSession, Signal
from simulators.store import Account, Store
from simulators.xoauth2 import token_verdict


Output = bytes | Signal


class State(enum.Enum):
    AUTHORIZATION = "authorization"
    TRANSACTION = "transaction"
    CLOSED = "closed"  # after QUIT, a fatal error, a timeout or a quirk's cut


MAX_UNKNOWN_BEFORE_LOGIN = 3  # Dovecot's pop3-login disconnects at the third unknown command in a row
MAX_ERRORS_AFTER_LOGIN = 20  # Dovecot's pop3 disconnects at the twenty-first -ERR in a row
MAX_LINE_BEFORE_LOGIN = 1034
MAX_LINE_AFTER_LOGIN = 2048
MAX_AUTH_LINE = 8192
AUTH_FAILED = "-ERR [AUTH] Authentication failed."
_APOP_SERIAL = itertools.count(1)  # only makes challenges unique within a process
_TRANSACTION_COMMANDS = ("CAPA", "DELE", "LIST", "NOOP", "QUIT", "RETR", "RSET", "STAT", "TOP", "UIDL")
_AUTHORIZATION_COMMANDS = ("CAPA", "USER", "PASS", "APOP", "AUTH", "STLS", "QUIT")
_NEEDS_CAPABILITY = {"TOP": "TOP", "UIDL": "UIDL"}


class CommandError(Exception):
    """A command answered with ``reply`` (a full "-ERR ..." line without CRLF)."""

    def __init__(self, reply: str):
        super().__init__(reply)
        self.reply = reply


class Pop3Session(FrontSession):
    def __init__(
        self,
        store: Store,
        profile: Profile,
        quirks: Iterable[Quirk] = (),
        *,
        tls_active: bool = False,
        tls_available: bool = True,
        clock: Callable[[], float] = time.time,
        hostname: str = "quirkmail",
    ):
        super().__init__(store, profile, quirks, tls_active=tls_active, tls_available=tls_available)
        self.pop3 = profile.pop3
        self.clock = clock  # seconds; tests inject a fake one (LOGIN-DELAY)
        self.state = State.AUTHORIZATION
        self.user: str | None = None  # from USER, for PASS
        self.account: Account | None = None
        self.maildrop: Maildrop | None = None
        self.apop_challenge = (
            f"<{os.getpid()}.{next(_APOP_SERIAL)}.{int(clock())}@{hostname}>" if self.pop3.apop else None
        )
        self._sasl: SaslExchange | None = None
        self._errors = 0
        self._buffer = b""

    # Adapter interface ---------------------------------------------------------------------

    def start(self) -> list[Output]:
        text = self._quirk("pop3_greeting", self) or self.pop3.greeting
        if self.apop_challenge:
            text += " " + self.apop_challenge
        return [f"+OK {text}\r\n".encode()]

    def receive_data(self, data: bytes) -> list[Output]:
        self._buffer += data
        while self.state is not State.CLOSED:
            limit = self._line_limit()
            end = self._buffer.find(b"\n", 0, limit)
            if end < 0:
                if len(self._buffer) >= limit:
                    self._too_long()
                break
            line, self._buffer = self._buffer[:end], self._buffer[end + 1 :]
            self._line(line.removesuffix(b"\r").decode("utf-8", "replace"))
            if self._out and self._out[-1] is START_TLS:
                self._buffer = b""  # RFC 2595 §4: nothing pipelined past STLS may be acted on
                break
        return self._flush()

    def timeout(self) -> list[Output]:
        self._end()
        return [b"-ERR Disconnected for inactivity.\r\n", CLOSE]

    def connection_lost(self) -> None:
        """The peer went away: no UPDATE state, so nothing marked by DELE is deleted."""
        self._end()

    def capabilities(self) -> list[str]:
        authenticated = self.state is State.TRANSACTION
        caps = list(self.pop3.capabilities_after_auth if authenticated else self.pop3.capabilities_before_auth)
        if self.tls_active or not self.tls_available:
            caps = [c for c in caps if c != "STLS"]
        return adjusted(self.quirks, "pop3_capabilities", caps, authenticated)

    @property
    def in_sasl(self) -> bool:
        """The next line is an AUTH response, not a command."""
        return self._sasl is not None

    def sasl_mechanisms(self) -> list[str]:
        for cap in self.capabilities():
            name, _, mechs = cap.partition(" ")
            if name.upper() == "SASL":
                return mechs.upper().split()
        return []

    def mark_deleted(self, number: int) -> None:
        """Mark message ``number`` for deletion at QUIT (DELE, or a quirk)."""
        self.maildrop.deleted.add(number)

    # Dispatch ------------------------------------------------------------------------------

    def _send(self, line: str | bytes) -> None:
        self._out.append(line.encode() if isinstance(line, str) else line)

    def _close(self) -> None:
        self._end()
        self._out.append(CLOSE)

    def _end(self) -> None:
        if self.state is not State.CLOSED:
            self.state = State.CLOSED
            self._tell("pop3_session_end", self)

    def _line_limit(self) -> int:
        """Bytes a line may take with its LF: Dovecot's input buffers, measured (1034 before login,
        2048 after). AUTH lines and SASL responses get 8192 (tokens are long; not measured)."""
        if self._sasl is not None or self._buffer[:5].upper() == b"AUTH ":
            return MAX_AUTH_LINE
        return MAX_LINE_BEFORE_LOGIN if self.state is State.AUTHORIZATION else MAX_LINE_AFTER_LOGIN

    def _too_long(self) -> None:
        self._buffer = b""
        if self.state is State.AUTHORIZATION:
            self._send(b"-ERR Input buffer full, aborting\r\n")
        else:
            self._send(b"-ERR Input line too long.\r\n")
        self._close()

    def _line(self, line: str) -> None:
        if self._sasl is not None:
            self._sasl_response(line)
            return
        name, _, args = line.partition(" ")
        name = name.upper()
        try:
            reply = self._quirk("pop3_command", self, name, args) or self._dispatch(name, args)
        except CommandError as exc:
            reply = exc.reply
        if reply is not None:
            self._send(reply + "\r\n")
        self._count_error(name, failed=reply is not None and reply.startswith("-ERR"))

    def _dispatch(self, name: str, args: str) -> str | None:
        if self.state is State.AUTHORIZATION:
            if name not in _AUTHORIZATION_COMMANDS or (name == "STLS" and not self._stls_offered()):
                if name == "STLS":
                    raise CommandError("-ERR TLS support isn't enabled.")
                raise CommandError("-ERR Unknown command.")
        elif name not in _TRANSACTION_COMMANDS or not self._advertised(name):
            raise CommandError(f"-ERR Unknown command: {name}" if name else "-ERR Unknown command.")
        return getattr(self, f"cmd_{name}")(args)

    def _count_error(self, name: str, failed: bool) -> None:
        """Dovecot's bad-command counters: consecutive failures only, any success resets."""
        if self.state is State.AUTHORIZATION:
            # Before login only unknown commands count (failed logins have their own delays).
            if name in _AUTHORIZATION_COMMANDS:
                self._errors = 0
                return
            self._errors += 1
            if self._errors >= MAX_UNKNOWN_BEFORE_LOGIN:
                self._send(b"-ERR Too many invalid bad commands.\r\n")
                self._close()
        elif self.state is State.TRANSACTION:
            self._errors = self._errors + 1 if failed else 0
            if self._errors > MAX_ERRORS_AFTER_LOGIN:
                self._send(b"-ERR Too many bad commands.\r\n")
                self._close()

    def _advertised(self, name: str) -> bool:
        needed = _NEEDS_CAPABILITY.get(name)
        return needed is None or any(c.upper().split(" ")[0] == needed for c in self.capabilities())

    def _stls_offered(self) -> bool:
        return self.tls_available and "STLS" in self.pop3.capabilities_before_auth

    # AUTHORIZATION state -------------------------------------------------------------------

    def cmd_CAPA(self, args: str) -> str:
        return "+OK\r\n" + "".join(c + "\r\n" for c in self.capabilities()) + "."

    def cmd_QUIT(self, args: str) -> None:
        if self.state is State.TRANSACTION:
            marked = bool(self.maildrop.deleted)
            self.maildrop.commit()
            self._send("+OK Logging out, messages deleted.\r\n" if marked else "+OK Logging out.\r\n")
        else:
            self._send(b"+OK Logging out\r\n")
        self._close()

    def cmd_STLS(self, args: str) -> None:
        if self.tls_active:
            raise CommandError("-ERR TLS is already active.")
        self._send(b"+OK Begin TLS negotiation now.\r\n")
        self._out.append(START_TLS)

    def cmd_USER(self, args: str) -> str:
        self.user = args
        return "+OK"

    def cmd_PASS(self, args: str) -> str:
        if self.user is None:
            raise CommandError("-ERR No username given.")
        return self._login("USER", self.user, args)

    def cmd_APOP(self, args: str) -> str:
        if self.apop_challenge is None:
            raise CommandError("-ERR APOP not enabled.")
        user, _, digest = args.rpartition(" ")
        account = self.store.accounts.get(user)
        expected = hashlib.md5((self.apop_challenge + (account.password if account else "")).encode()).hexdigest()
        # The digest proves the password without sending it: hand the real one on when it matches.
        password = account.password if account is not None and digest.lower() == expected else None
        return self._login("APOP", user, password)

    def cmd_AUTH(self, args: str) -> str | None:
        mechs = self.sasl_mechanisms()
        if not args:  # the pre-RFC 5034 form: list the mechanisms
            return "+OK\r\n" + "".join(m + "\r\n" for m in mechs) + "."
        mech, _, initial = args.partition(" ")
        mech = mech.upper()
        if mech not in mechs or mech not in ("PLAIN", "LOGIN", "XOAUTH2"):
            raise CommandError("-ERR [AUTH] Unsupported authentication mechanism.")
        self._sasl = SaslExchange("", mech)
        if initial:
            self._sasl_response(initial)
            return None
        return "+ " + self._sasl.challenge().decode()

    def _sasl_response(self, line: str) -> None:
        exchange, self._sasl = self._sasl, None
        if line.strip() == "*":
            self._reply("-ERR Authentication aborted by client.")
            return
        try:
            decoded = b"" if line.strip() == "=" else base64.b64decode(line.strip(), validate=True)
        except (binascii.Error, ValueError):
            self._reply("-ERR Invalid base64 data in continued response")
            return
        if not exchange.feed(decoded):
            self._sasl = exchange
            self._reply("+ " + exchange.challenge().decode())
            return
        user, password = exchange.credentials()
        self._reply(self._login(exchange.mech, user, password))

    def _reply(self, reply: str) -> None:
        self._send(reply + "\r\n")

    def _login(self, mechanism: str, user: str, password: str | None) -> str:
        """USER/PASS, APOP, AUTH: the reply. For XOAUTH2 ``password`` is the bearer token, valid
        when it is the account's password unless a quirk says otherwise (``oauth_check``)."""
        account = self.store.accounts.get(user)
        if mechanism == "XOAUTH2":
            valid = token_verdict(self.quirks, "pop3", user, password, account)
            if isinstance(valid, str):
                return valid
        else:
            valid = account is not None and password is not None and account.password == password
        refusal = self._quirk("pop3_login", self, user, password or "", mechanism, valid)
        if refusal is not None:
            return refusal
        if not valid:
            return AUTH_FAILED
        self.account = account
        self.user = user
        self.maildrop = Maildrop.snapshot(self.store, account)
        self.state = State.TRANSACTION
        self._errors = 0
        for q in self.quirks:
            q.pop3_logged_in(self)
            if mechanism == "XOAUTH2":
                q.oauth_logged_in("pop3", user, password)
        return "+OK " + self.pop3.login_reply

    # TRANSACTION state ---------------------------------------------------------------------

    def _number(self, args: str, *, then_space: bool) -> tuple[int, str]:
        """Dovecot's get_msgnum(): the message number, then what follows it."""
        digits = len(args) - len(args.lstrip("0123456789"))
        if digits == 0:
            raise CommandError(f"-ERR Invalid message number: {args}")
        number, rest = int(args[:digits]), args[digits:]
        if number >= 2**32:
            raise CommandError(f"-ERR Message number too large: {rest}")
        if rest[:1] != (" " if then_space else ""):
            raise CommandError(f"-ERR Noise after message number: {rest}")
        if number == 0 or number > len(self.maildrop):
            raise CommandError(f"-ERR There's no message {number}.")
        if number in self.maildrop.deleted:
            raise CommandError("-ERR Message is deleted.")
        return number, rest.lstrip(" ")

    def cmd_STAT(self, args: str) -> str:
        count, size = self.maildrop.stat()
        return f"+OK {count} {size}"

    def cmd_LIST(self, args: str) -> str:
        if args:
            number, _ = self._number(args, then_space=False)
            return f"+OK {number} {self.maildrop.entry(number).size}"
        live = self.maildrop.live()
        return f"+OK {len(live)} messages:\r\n" + "".join(f"{n} {e.size}\r\n" for n, e in live) + "."

    def _uidl(self, number: int) -> str:
        entry = self.maildrop.entry(number)
        return self._quirk("pop3_uidl", self, number, entry.item, entry.uidl) or entry.uidl

    def cmd_UIDL(self, args: str) -> str:
        if args:
            number, _ = self._number(args, then_space=False)
            return f"+OK {number} {self._uidl(number)}"
        return "+OK\r\n" + "".join(f"{n} {self._uidl(n)}\r\n" for n, _e in self.maildrop.live()) + "."

    def cmd_RETR(self, args: str) -> None:
        number, _ = self._number(args, then_space=False)
        entry = self.maildrop.entry(number)
        reply = f"+OK {entry.size} octets\r\n".encode() + multiline(entry.wire)
        cut = self._quirk("pop3_retr_cut", self, number)
        if cut is not None and cut < len(reply):
            self._send(reply[:cut])
            self._close()
            return
        self._send(reply)
        self.maildrop.retrieved.add(number)
        self._tell("pop3_retrieved", self, number)

    def cmd_TOP(self, args: str) -> None:
        number, rest = self._number(args, then_space=True)
        digits = len(rest) - len(rest.lstrip("0123456789"))
        if digits == 0:
            raise CommandError(f"-ERR Invalid size: {rest}")
        if rest[digits:]:
            raise CommandError(f"-ERR Noise after size: {rest[digits:]}")
        self._send(b"+OK\r\n" + multiline(top(self.maildrop.entry(number).wire, int(rest[:digits]))))

    def cmd_DELE(self, args: str) -> str:
        number, _ = self._number(args, then_space=False)
        self.mark_deleted(number)
        return "+OK Marked to be deleted."

    def cmd_RSET(self, args: str) -> str:
        self.maildrop.deleted.clear()
        self.maildrop.retrieved.clear()
        return "+OK"

    def cmd_NOOP(self, args: str) -> str:
        return "+OK"

