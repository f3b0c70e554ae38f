"""The IMAP command engine: one ``ImapSession`` per connection, bytes in, bytes out, no sockets.

    session = ImapSession(store, profile, quirks)
    out = session.start()                       # [greeting bytes]
    out = session.receive_data(b"a1 LOGIN alice secret\\r\\n")
    # out: a list of bytes to write, and the signals START_TLS / CLOSE, in order

The adapter (``simulators.imap.server``) writes the bytes, starts TLS or closes when told, and
calls ``pending()`` when the store changed (IDLE pushes) and ``timeout()`` for autologout.
Created with ``streaming=True`` (the adapter does), a bulk FETCH comes out as a ``Stream`` of
responses to write as the socket drains; the session then reads no further command until the
adapter calls ``resume()``, so pipelined commands keep their order.

Quirks (``simulators.quirks.Quirk``'s ``imap_*`` hooks) are asked at fixed points: greeting,
capabilities, before each command, login, folder lookup/creation, SELECT, APPEND size, every
tagged reply, connection and error limits.

Quirks may also end a session with ``* BYE`` before a command (``imap_bye``), hold a reply back
(``imap_delay``: a ``Delay`` output the adapter waits out on its clock), pace FETCH responses
(``imap_pace``) and count the message bytes that travel (``imap_transfer``).

Legal commands per state are the table ``ALLOWED``; capability-gated commands (MOVE, UNSELECT,
UID EXPUNGE ...) are refused as unknown when the profile does not advertise them. Reply wording
follows Dovecot 2.3 (the ``generic`` profile is compared with a real Dovecot), including its
``(0.001 + 0.000 secs)`` timing suffix, which is constant here so transcripts stay stable.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from simulators.imap import fetch
from simulators.imap.names import MailboxNameError, mailbox_atom, names_for
from simulators.imap.sasl import MECHANISMS as SASL_MECHANISMS
from simulators.imap.sasl import SaslExchange
from simulators.imap.syntax import (
    BadCommand,
    Command,
    CommandReader,
    EXTENSION_ATTS,
    ContinuationLine,
    ImapSyntaxError,
    NeedContinuation,
    RefusedCommand,
    astring,
    format_sequence_set,
    parse_fetch_atts,
    tokenize,
)
from simulators.imap.view import MailboxView
from simulators.profiles import Profile
from simulators.quirks import Quirk, adjusted
from simulators.session import CLOSE, START_TLS, FrontSession, Signal
from simulators.store import INBOX, SYSTEM_FLAGS, Account, Folder, FolderExists, NoSuchFolder, Store
from simulators.xoauth2 import token_verdict


log = logging.getLogger(__name__)


@dataclass
class Stream:
    """Responses to write as the socket drains (a bulk FETCH). The session is paused meanwhile:
    the adapter calls ``resume()`` when the stream is exhausted."""

    chunks: Iterator[bytes]


@dataclass(frozen=True)
class Delay:
    """Hold every later output back for ``seconds`` (slow servers, trickling replies): the adapter
    waits it out on its clock; a Stream may carry Delays between its chunks too."""

    seconds: float


class _MonotonicClock:
    """The clock of a session built without an adapter's (``seconds()`` like Twisted's reactor)."""

    @staticmethod
    def seconds() -> float:
        return time.monotonic()


Output = bytes | Signal | Stream | Delay


class State(enum.Enum):
    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


_ANY = frozenset(State) - {State.LOGOUT}
_NA = frozenset({State.NOT_AUTHENTICATED})
_AUTH = frozenset({State.AUTHENTICATED, State.SELECTED})
_SEL = frozenset({State.SELECTED})

ALLOWED: dict[str, frozenset[State]] = {
    **dict.fromkeys(["CAPABILITY", "NOOP", "LOGOUT", "ID"], _ANY),
    **dict.fromkeys(["STARTTLS", "LOGIN", "AUTHENTICATE"], _NA),
    **dict.fromkeys(
        "SELECT EXAMINE CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE LIST LSUB STATUS APPEND "
        "NAMESPACE ENABLE IDLE".split(),
        _AUTH,
    ),
    **dict.fromkeys(
        "CHECK CLOSE EXPUNGE SEARCH FETCH STORE COPY MOVE UNSELECT".split()
        + ["UID EXPUNGE", "UID SEARCH", "UID FETCH", "UID STORE", "UID COPY", "UID MOVE"],
        _SEL,
    ),
}
# Commands that exist only when their extension is advertised.
NEEDS_CAPABILITY = {
    "MOVE": "MOVE", "UID MOVE": "MOVE", "UNSELECT": "UNSELECT", "UID EXPUNGE": "UIDPLUS",
    "NAMESPACE": "NAMESPACE", "ID": "ID", "ENABLE": "ENABLE", "IDLE": "IDLE", "STARTTLS": "STARTTLS",
}
_UID_COMMANDS = frozenset({"SEARCH", "FETCH", "STORE", "COPY", "MOVE", "EXPUNGE"})
TIMING = " (0.001 + 0.000 secs)."
MAX_BAD_COMMANDS = 20  # Dovecot disconnects after this many
TOOBIG = "[TOOBIG] Mail size is larger than the maximum size allowed by server configuration"
_LITERAL_MARKER = re.compile(rb"\{\d+\+?\}\r?\n$")


class CommandFailed(Exception):
    """A command that ends with a tagged reply other than OK; ``reply`` is 'NO ...'/'BAD ...'."""

    def __init__(self, reply: str):
        super().__init__(reply)
        self.reply = reply


def _no(text: str) -> CommandFailed:
    return CommandFailed("NO " + text)


def _bad(command: str, text: str) -> CommandFailed:
    return CommandFailed(f"BAD Error in IMAP command {command}: {text}")


LoginGate = Callable[[str], "str | None"]  # username → refusal reply ("NO [UNAVAILABLE] ...") or None


class ImapSession(FrontSession):
    def __init__(
        self,
        store: Store,
        profile: Profile,
        quirks: Iterable[Quirk] = (),
        *,
        tls_active: bool = False,
        tls_available: bool = True,
        login_gate: LoginGate | None = None,
        streaming: bool = False,
        clock=None,
    ):
        super().__init__(store, profile, quirks, tls_active=tls_active, tls_available=tls_available)
        self.imap = profile.imap
        self.names = names_for(self.imap, self.quirks)
        # Quirks that rewrite untagged replies (malformed-responses, modified-utf7-names).
        self._garbles = any(type(q).imap_untagged is not Quirk.imap_untagged for q in self.quirks)
        self.login_gate = login_gate
        self.streaming = streaming  # the adapter can write Stream outputs (tests read plain bytes)
        self.clock = clock or _MonotonicClock()  # seconds(); quirks with time windows read it
        self._paused = False
        self.state = State.NOT_AUTHENTICATED
        self.account: Account | None = None
        self.view: MailboxView | None = None
        self.idling: str | None = None  # tag of the running IDLE
        self._auth: SaslExchange | None = None
        self._sasl_final: tuple[str, str] | None = None  # (tag, reply) held back by an error continuation
        self._errors = 0
        # Dovecot disconnects after 20 BAD replies; a quirk may say otherwise (Exchange: 10 errors).
        self._error_limit = self._quirk("imap_error_limit") or (MAX_BAD_COMMANDS, "Too many invalid IMAP commands.", False)
        self._asked_capability = False
        self.id_sent = False  # for quirks (NetEase refuses SELECT before ID)
        self.auth_command = ""  # "LOGIN" or "AUTHENTICATE" while credentials are checked
        self.auth_mechanism = ""  # the SASL mechanism of AUTHENTICATE ("PLAIN", "XOAUTH2" ...)
        self.reader = CommandReader(literal_policy=self._literal_policy)

    # Adapter interface ---------------------------------------------------------------------

    def start(self) -> list[Output]:
        text = self._quirk("imap_greeting", self)
        if text is None:
            text = self.imap.greeting.replace("{capabilities}", " ".join(self.capabilities()))
        return [f"* OK {text}\r\n".encode()]

    def receive_data(self, data: bytes) -> list[Output]:
        self.reader.receive_data(data)
        while not self._paused and self.state is not State.LOGOUT and (event := self.reader.next_event()):
            self._handle(event)
            if self._out and self._out[-1] is START_TLS:
                break  # the rest of the bytes (if any) belong to the TLS layer
        return self._flush()

    def resume(self) -> list[Output]:
        """The last Stream was written: go on with the commands that arrived meanwhile."""
        self._paused = False
        return self.receive_data(b"")

    def pending(self) -> list[Output]:
        """Untagged updates for an idling client after the store changed."""
        if self.idling and self.view is not None:
            with self.store.lock:
                self._out.extend(self.view.sync())
        return self._flush()

    def timeout(self) -> list[Output]:
        self.state = State.LOGOUT
        return [b"* BYE Disconnected for inactivity.\r\n", CLOSE]

    def closed(self) -> None:
        """The adapter lost the connection: quirks that follow sessions hear it."""
        self._tell("imap_session_end", self)

    @property
    def between_commands(self) -> bool:
        """The next line would be read as a new command (not a literal, SASL or IDLE line)."""
        return (not self._paused and self.state is not State.LOGOUT and self._auth is None
                and self.idling is None and self.reader.idle)

    def capabilities(self) -> list[str]:
        authenticated = self.state in _AUTH
        caps = list(self.imap.capabilities_after_auth if authenticated else self.imap.capabilities_before_auth)
        if self.tls_active or not self.tls_available:
            caps = [c for c in caps if c not in ("STARTTLS", "LOGINDISABLED")]
        if self.imap.append_limit and authenticated:
            caps = [f"APPENDLIMIT={self.imap.append_limit}" if c == "APPENDLIMIT" else c for c in caps]
        return adjusted(self.quirks, "imap_capabilities", caps, authenticated)

    def has_capability(self, name: str) -> bool:
        return any(c.upper() == name or c.upper().startswith(name + "=") for c in self.capabilities())

    # Dispatch ------------------------------------------------------------------------------

    def _send(self, line: bytes | str) -> None:
        # surrogateescape: atoms are decoded that way (syntax._parse_atom), so an 8-bit command
        # name or keyword echoed in a reply goes back as the bytes the client sent.
        self._out.append(line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line)

    def _tagged(self, tag: str, reply: str) -> None:
        """Every tagged reply goes out here: quirks may rewrite it, and errors are counted."""
        changed = self._quirk("imap_reply", self, reply)
        if changed is not None:
            reply = changed
        self._send(f"{tag} {reply}\r\n")
        limit, bye, count_no = self._error_limit
        if reply.startswith("BAD") or (count_no and reply.startswith("NO")):
            self._errors += 1
            if self._errors >= limit and self.state is not State.LOGOUT:
                self._send(f"* BYE {bye}\r\n")
                self._out.append(CLOSE)
                self.state = State.LOGOUT

    def _rewritten(self, command: str, line: bytes, item) -> bytes:
        """An untagged reply line as a quirk may garble it (malformed-responses, raw UTF-8 names)."""
        if not self._garbles:
            return line
        changed = self._quirk("imap_untagged", self, command, line, item)
        return line if changed is None else changed

    def _handle(self, event) -> None:
        if isinstance(event, NeedContinuation):
            self._send(b"+ Ready for literal data\r\n")
        elif isinstance(event, ContinuationLine):
            self._continuation(event.line)
        elif isinstance(event, RefusedCommand):
            self._tagged(event.tag, event.reply)
        elif isinstance(event, BadCommand):
            self._tagged(event.tag, self._timed(f"BAD {event.message}"))
        elif isinstance(event, Command):
            self._command(event)

    def _timed(self, reply: str) -> str:
        """Dovecot's timing suffix on its own BAD replies after login (quirk replies stay verbatim)."""
        if self.state is State.NOT_AUTHENTICATED or not reply.startswith("BAD Error in IMAP command"):
            return reply
        return reply.removesuffix(".") + TIMING

    def _command(self, cmd: Command) -> None:
        name = cmd.name
        base = name.removeprefix("UID ")
        handler = getattr(self, "cmd_" + base, None)
        if name != base and base in _UID_COMMANDS and handler is not None:
            handler = functools.partial(handler, uid=True)
        allowed = ALLOWED.get(name)
        needs = NEEDS_CAPABILITY.get(name)
        known = handler is not None and allowed is not None and (needs is None or self.has_capability(needs))
        if not known or self.state not in allowed:
            if self.state is State.NOT_AUTHENTICATED:
                self._tagged(cmd.tag, "BAD Error in IMAP command received by server.")
            elif known and State.SELECTED in allowed and State.AUTHENTICATED not in allowed:
                self._tagged(cmd.tag, "BAD No mailbox selected" + TIMING)
            else:
                self._tagged(cmd.tag, f"BAD Error in IMAP command {name}: Unknown command" + TIMING)
            return
        bye = self._quirk("imap_bye", self, cmd)
        if bye is not None:  # the server ends the session instead of answering (Gmail's cap)
            self._send(f"* BYE {bye}\r\n")
            self._out.append(CLOSE)
            self.state = State.LOGOUT
            return
        override = self._quirk("imap_command", self, cmd)
        if override is not None:
            untagged, reply = override if isinstance(override, tuple) else ((), override)
            for line in untagged:
                self._send(line + "\r\n")
            self._tagged(cmd.tag, reply)
            return
        start = len(self._out)
        try:
            with self.store.lock:
                reply = handler(cmd)
        except CommandFailed as exc:
            self._updates(cmd.name)
            self._tagged(cmd.tag, self._timed(exc.reply))
        except ImapSyntaxError as exc:
            self._tagged(cmd.tag, self._timed(f"BAD Error in IMAP command {name}: {exc}"))
        except Exception:
            # A bug here must cost one command, not the connection (and the client's migration).
            log.exception("IMAP command %s %s failed", cmd.tag, name)
            self._tagged(cmd.tag, "NO [SERVERBUG] Internal error occurred. Refer to server log for more information.")
        else:
            if reply is not None:  # None: the command answers later (IDLE, AUTHENTICATE)
                self._updates(cmd.name)
                self._tagged(cmd.tag, reply)
            delay = self._quirk("imap_delay", self, cmd)
            if delay:  # the whole reply (untagged lines too) comes late: a slow server, not a slow wire
                self._out.insert(start, Delay(delay))

    def _updates(self, command: str) -> None:
        if self.view is not None and self.state is State.SELECTED:
            allow_expunge = command not in ("FETCH", "STORE", "SEARCH")
            with self.store.lock:
                self._out.extend(self.view.sync(allow_expunge=allow_expunge))

    def _literal_policy(self, prefix: bytes, size: int) -> str | None:
        """Refuse an APPEND before its literal is sent: missing mailbox, message too large.
        ``prefix`` is the command's first line: a mailbox sent as a literal is checked when the
        command completes instead."""
        if self.state not in _AUTH:
            return None
        marker = _LITERAL_MARKER.search(prefix)
        _tag, _, rest = prefix[: marker.start()].partition(b" ")
        try:
            tokens = tokenize(rest)
        except ImapSyntaxError:
            return None  # the command itself will be answered with BAD
        if len(tokens) < 2 or not isinstance(tokens[0], str) or tokens[0].upper() != "APPEND":
            return None
        limit = self.imap.append_limit
        if limit is not None and size > limit:
            return "NO " + TOOBIG
        refusal = self._quirk("imap_append_size", self, size)
        if refusal is not None:
            return refusal
        try:
            self._existing(tokens[1], create_hint=True)
        except CommandFailed as exc:
            return exc.reply
        return None

    # Any state ------------------------------------------------------------------------------

    def cmd_CAPABILITY(self, cmd: Command) -> str:
        self._asked_capability = True
        self._send("* CAPABILITY " + " ".join(self.capabilities()) + "\r\n")
        if self.state is State.NOT_AUTHENTICATED:
            return "OK Pre-login capabilities listed, post-login capabilities have more."
        return "OK Capability completed" + TIMING

    def cmd_NOOP(self, cmd: Command) -> str:
        return "OK NOOP completed" + TIMING

    def cmd_LOGOUT(self, cmd: Command) -> None:
        self._send(b"* BYE Logging out\r\n")
        self._tagged(cmd.tag, "OK Logout completed" + TIMING)
        self._out.append(CLOSE)
        self.state = State.LOGOUT
        self.view = None
        return None

    def cmd_ID(self, cmd: Command) -> str:
        self.id_sent = True
        self._send(b'* ID ("name" "Dovecot")\r\n')
        return "OK ID completed" + TIMING

    # Not authenticated ------------------------------------------------------------------------

    def cmd_STARTTLS(self, cmd: Command) -> None:
        if self.tls_active:
            raise _bad("STARTTLS", "TLS is already active.")
        self._tagged(cmd.tag, "OK Begin TLS negotiation now.")
        self._out.append(START_TLS)
        self.tls_active = True
        # Plaintext pipelined after STARTTLS must not count as commands (CVE-2011-0411 class).
        self.reader = CommandReader(literal_policy=self._literal_policy)
        return None

    def cmd_LOGIN(self, cmd: Command) -> str:
        if len(cmd.args) != 2:
            raise _bad("LOGIN", "Invalid arguments")
        user, password = (_text(a) for a in cmd.args)
        return self._login("LOGIN", user, password)

    def cmd_AUTHENTICATE(self, cmd: Command) -> str | None:
        if not cmd.args or not isinstance(cmd.args[0], str):
            raise _bad("AUTHENTICATE", "Missing SASL mechanism")
        mech = cmd.args[0].upper()
        if not self.has_capability("AUTH=" + mech) or mech not in SASL_MECHANISMS:
            raise _no("Unsupported authentication mechanism.")
        self._auth = SaslExchange(cmd.tag, mech)
        if len(cmd.args) > 1:
            if not self.has_capability("SASL-IR"):
                raise _bad("AUTHENTICATE", "Initial response not allowed")
            self._continuation(_raw(cmd.args[1]))
            return None
        self._ask_auth()
        return None

    def _ask_auth(self) -> None:
        self._send(b"+ " + self._auth.challenge() + b"\r\n")
        self.reader.expect_line()

    def _continuation(self, line: bytes) -> None:
        if self.idling is not None:
            tag, self.idling = self.idling, None
            if line.strip().upper() == b"DONE":
                self._updates("IDLE")
                self._tagged(tag, "OK Idle completed" + TIMING)
            else:
                self._tagged(tag, "BAD Expected DONE.")
            return
        if self._sasl_final is not None:  # the client answered an error continuation
            (tag, reply), self._sasl_final = self._sasl_final, None
            self._tagged(tag, "BAD Authentication aborted by client." if line.strip() == b"*" else reply)
            return
        exchange, self._auth = self._auth, None
        if exchange is None:
            return
        if line.strip() == b"*":
            self._tagged(exchange.tag, "BAD Authentication aborted by client.")
            return
        try:
            decoded = base64.b64decode(line.strip(), validate=True) if line.strip() != b"=" else b""
        except (binascii.Error, ValueError):
            self._tagged(exchange.tag, "BAD Invalid base64 data in continued response")
            return
        done = exchange.feed(decoded)
        if not done:
            self._auth = exchange
            self._ask_auth()
            return
        user, password = exchange.credentials()
        reply = self._login("AUTHENTICATE", user, password, exchange.mech)
        continuation = None if reply.startswith("OK") else self._quirk("imap_sasl_failure", self, exchange.mech, reply)
        if continuation is None:
            self._tagged(exchange.tag, reply)
            return
        challenge, final = continuation
        self._sasl_final = (exchange.tag, final)
        self._send(f"+ {challenge}\r\n")
        self.reader.expect_line()

    def _login(self, command: str, user: str, password: str, mechanism: str = "") -> str:
        """LOGIN / AUTHENTICATE: the tagged reply. For XOAUTH2 ``password`` is the bearer token,
        valid when it is the account's password unless a quirk says otherwise (``oauth_check``)."""
        self.auth_command, self.auth_mechanism = command, mechanism
        if "LOGINDISABLED" in self.capabilities():  # a profile that wants TLS first
            return "NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."
        refusal = self._quirk("imap_login", self, user, password)
        if refusal is not None:
            return refusal
        account = self.store.accounts.get(user)
        if mechanism == "XOAUTH2":
            ok = token_verdict(self.quirks, "imap", user, password, account)
            if isinstance(ok, str):
                return ok
        else:
            ok = account is not None and account.password == password
        if not ok:
            return "NO [AUTHENTICATIONFAILED] Authentication failed."
        if self.login_gate is not None:
            refusal = self.login_gate(user)
            if refusal is not None:
                return refusal
        if mechanism == "XOAUTH2":
            self._tell("oauth_logged_in", "imap", user, password)
        self.account = account
        self.state = State.AUTHENTICATED
        caps = " ".join(self.capabilities())
        # Dovecot: a client that asked CAPABILITY before login gets the new list untagged (it
        # evidently reads untagged CAPABILITY); others get it as the OK's response code.
        if self._asked_capability:
            self._send(f"* CAPABILITY {caps}\r\n")
            return "OK Logged in"
        return f"OK [CAPABILITY {caps}] Logged in"

    # Authenticated: mailboxes -------------------------------------------------------------------

    def _path(self, arg) -> tuple[str, ...]:
        try:
            return self.names.from_wire(_raw(arg))
        except MailboxNameError as exc:
            raise _no(str(exc)) from None

    def _lookup(self, path: tuple[str, ...]) -> Folder | None:
        folders = self.account.folders
        folder = folders.get(path)
        if folder is None and self.imap.case_insensitive_names:
            wanted = tuple(p.upper() for p in path)
            folder = next((f for p, f in folders.items() if tuple(x.upper() for x in p) == wanted), None)
        if folder is None:
            mapped = self._quirk("imap_resolve_folder", self, path)
            folder = folders.get(mapped) if mapped is not None else None
        return folder

    def _messages_of(self, folder: Folder) -> list:
        shown = self._quirk("imap_folder_messages", self, folder)
        return folder.messages if shown is None else shown

    def _existing(self, arg, *, create_hint: bool = False, code: str = "") -> Folder:
        """The folder a mailbox argument names; NO with ``code`` (or TRYCREATE) when missing."""
        folder = self._lookup(self._path(arg))
        if folder is None:
            code = "[TRYCREATE] " if create_hint else code
            raise _no(f"{code}Mailbox doesn't exist: {_text(arg)}" + TIMING)
        return folder

    def _select(self, cmd: Command, read_only: bool) -> str:
        if self.view is not None:
            self.view = None
            self.state = State.AUTHENTICATED
            self._send(b"* OK [CLOSED] Previous mailbox closed.\r\n")
        if len(cmd.args) != 1:
            raise _bad(cmd.name, "Invalid arguments")
        folder = self._existing(cmd.args[0])
        refusal = self._quirk("imap_select", self, folder, read_only)
        if refusal is not None:
            raise CommandFailed(refusal)
        if not folder.selectable:
            raise _no(f"Mailbox isn't selectable: {_text(cmd.args[0])}" + TIMING)
        view = MailboxView(self.account, folder, read_only=read_only, messages_of=self._messages_of)
        flags = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"] + view.keywords()
        self._send("* FLAGS (" + " ".join(flags) + ")\r\n")
        if read_only:
            permanent, text = [], "Read-only mailbox."
        else:
            permanent = [f for f in self.imap.permanent_flags if f != "\\*"] + view.keywords()
            if "\\*" in self.imap.permanent_flags:
                permanent.append("\\*")
            text = "Flags permitted."
        permanent, text = self._quirk("imap_permanent_flags", self, folder, read_only, permanent) or (permanent, text)
        self._send("* OK [PERMANENTFLAGS (" + " ".join(permanent) + f")] {text}\r\n")
        self._send(b"* %d EXISTS\r\n* %d RECENT\r\n" % (len(view), len(view.recent)))
        unseen = next((i for i, m in enumerate(view.items) if "\\Seen" not in m.flags), None)
        if unseen is not None:
            self._send(b"* OK [UNSEEN %d] First unseen.\r\n" % (unseen + 1))
        self._send(b"* OK [UIDVALIDITY %d] UIDs valid\r\n" % folder.uidvalidity)
        self._send(b"* OK [UIDNEXT %d] Predicted next UID\r\n" % folder.uidnext)
        self.view = view
        self.state = State.SELECTED
        if read_only:
            return "OK [READ-ONLY] Examine completed" + TIMING
        return "OK [READ-WRITE] Select completed" + TIMING

    def cmd_SELECT(self, cmd: Command) -> str:
        return self._select(cmd, read_only=False)

    def cmd_EXAMINE(self, cmd: Command) -> str:
        return self._select(cmd, read_only=True)

    def cmd_CREATE(self, cmd: Command) -> str:
        if len(cmd.args) != 1:
            raise _bad("CREATE", "Invalid arguments")
        path = self._path(cmd.args[0])
        refusal = self._quirk("imap_create", self, path)
        if refusal is not None:
            raise CommandFailed(refusal)
        existing = self._lookup(path)
        if existing is not None and existing.selectable:
            raise _no("[ALREADYEXISTS] Mailbox already exists" + TIMING)
        if existing is not None:  # a \Noselect name kept for its children becomes a mailbox
            existing.selectable = True
            return "OK Create completed" + TIMING
        # Missing parents appear as \Noselect names, not as mailboxes (Dovecot's behaviour).
        missing = [path[:i] for i in range(1, len(path)) if self._lookup(path[:i]) is None]
        # CREATE does not subscribe (Dovecot without autosubscribe).
        self.account.create_folder(path, special_use=self.profile.special_use_of(path), subscribed=False)
        for parent in missing:
            self.account.folders[parent].selectable = False
            self.account.folders[parent].subscribed = False
        return "OK Create completed" + TIMING

    def cmd_DELETE(self, cmd: Command) -> str:
        if len(cmd.args) != 1:
            raise _bad("DELETE", "Invalid arguments")
        path = self._path(cmd.args[0])
        if path == INBOX:
            raise _no("INBOX can't be deleted" + TIMING)
        folder = self._existing(cmd.args[0], code="[NONEXISTENT] ")
        if self.view is not None and self.view.folder is folder:
            self.view = None
            self.state = State.AUTHENTICATED
        if self.account.children(folder.path):
            # Dovecot keeps a parent with children as a \Noselect name and drops its mail.
            folder.selectable = False
            folder.messages = []
            self.store.notify(self.account, folder)
        else:
            self.account.delete_folder(folder.path)
        return "OK Delete completed" + TIMING

    def cmd_RENAME(self, cmd: Command) -> str:
        if len(cmd.args) != 2:
            raise _bad("RENAME", "Invalid arguments")
        folder = self._existing(cmd.args[0], code="[NONEXISTENT] ")
        new = self._path(cmd.args[1])
        refusal = self._quirk("imap_create", self, new)
        if refusal is not None:
            raise CommandFailed(refusal)
        existing = self._lookup(new)
        if existing is not None and existing is not folder:
            raise _no("[ALREADYEXISTS] Mailbox already exists" + TIMING)
        try:
            self.account.rename_folder(folder.path, new)
        except (FolderExists, NoSuchFolder) as exc:
            raise _no(f"Cannot rename mailbox: {exc}" + TIMING) from None
        return "OK Rename completed" + TIMING

    def _subscribe(self, cmd: Command, on: bool) -> str:
        if len(cmd.args) != 1:
            raise _bad(cmd.name, "Invalid arguments")
        folder = self._lookup(self._path(cmd.args[0]))
        if folder is not None:
            folder.subscribed = on
        return ("OK Subscribe completed" if on else "OK Unsubscribe completed") + TIMING

    def cmd_SUBSCRIBE(self, cmd: Command) -> str:
        return self._subscribe(cmd, True)

    def cmd_UNSUBSCRIBE(self, cmd: Command) -> str:
        return self._subscribe(cmd, False)

    def _list(self, cmd: Command, lsub: bool) -> str:
        if len(cmd.args) != 2 or isinstance(cmd.args[0], list):
            raise _bad(cmd.name, "Invalid arguments")  # LIST-EXTENDED is not advertised
        reference, pattern = _text(cmd.args[0]), _text(cmd.args[1])
        keyword = "LSUB" if lsub else "LIST"
        delim = self.names.delimiter
        if not pattern:
            self._send(f"* {keyword} (\\Noselect) ".encode() + astring(delim) + b' ""\r\n')
            return f"OK {keyword.title()} completed" + TIMING
        match = self.names.matcher(reference, pattern)
        wire = {p: self.names.to_wire(p).decode("ascii") for p in self.account.folders}
        parents = {w.rsplit(delim, 1)[0] for w in wire.values() if delim in w}
        for path, name in wire.items():
            folder = self.account.folders[path]
            if not match(name) or (lsub and not folder.subscribed):
                continue
            attrs = [] if folder.selectable else ["\\Noselect"]
            if not lsub:
                attrs.append("\\HasChildren" if name in parents else "\\HasNoChildren")
                use = folder.special_use or self.profile.special_use_of(path)
                if use and self.has_capability("SPECIAL-USE"):
                    attrs.append(use)
            line = f"* {keyword} ({' '.join(attrs)}) ".encode() + astring(delim) + b" " + mailbox_atom(name)
            self._send(self._rewritten(cmd.name, line, folder) + b"\r\n")
        return f"OK {keyword.title()} completed" + TIMING

    def cmd_LIST(self, cmd: Command) -> str:
        return self._list(cmd, lsub=False)

    def cmd_LSUB(self, cmd: Command) -> str:
        return self._list(cmd, lsub=True)

    def cmd_STATUS(self, cmd: Command) -> str:
        if len(cmd.args) != 2 or not isinstance(cmd.args[1], list) or not cmd.args[1]:
            raise _bad("STATUS", "Invalid status items")
        folder = self._existing(cmd.args[0])
        messages = self._messages_of(folder)
        values = []
        for item in cmd.args[1]:
            key = _text(item).upper()
            if key == "MESSAGES":
                value = len(messages)
            elif key == "RECENT":
                value = MailboxView.unclaimed_recent(self.account, folder, messages)
            elif key == "UIDNEXT":
                value = folder.uidnext
            elif key == "UIDVALIDITY":
                value = folder.uidvalidity
            elif key == "UNSEEN":
                value = sum(1 for m in messages if "\\Seen" not in m.flags)
            else:
                raise _bad("STATUS", f"Invalid status item {key}")
            values.append(f"{key} {value}")
        line = b"* STATUS " + mailbox_atom(_text(cmd.args[0])) + f" ({' '.join(values)})".encode()
        self._send(self._rewritten("STATUS", line, folder) + b"\r\n")
        if self.view is not None and self.view.folder is folder:
            return "OK [CLIENTBUG] Status on selected mailbox completed" + TIMING
        return "OK Status completed" + TIMING

    def cmd_APPEND(self, cmd: Command) -> str:
        if len(cmd.args) < 2:
            raise _bad("APPEND", "Invalid arguments")
        folder = self._existing(cmd.args[0], create_hint=True)
        messages = _append_messages(cmd.args[1:], self.has_capability("MULTIAPPEND"))
        for flags, _when, raw in messages:
            limit = self.imap.append_limit
            if limit is not None and len(raw) > limit:
                raise _no(TOOBIG)
            refusal = (self._quirk("imap_append_size", self, len(raw)) or self._quirk("imap_message_refused", self, raw)
                       or self._quirk("imap_flags_refused", self, "APPEND", flags))
            if refusal is not None:
                raise CommandFailed(refusal)
            self._check_flags("APPEND", flags)
        uids = []
        for flags, when, raw in messages:
            stored = self._quirk("imap_stored_flags", self, flags)
            flags = flags if stored is None else stored
            uid = self._quirk("imap_append", self, folder, raw, flags, when)
            if uid is None:
                uid = self.account.append(folder.path, raw, flags=flags, internaldate=when).uid
            uids.append(uid)
            self._tell("imap_transfer", self, "up", len(raw))
            item = folder.by_uid(uid)
            if item is not None:  # None: a quirk stored nothing here (Gmail's dedup)
                self._tell("imap_appended", self, folder, item)
        if self.has_capability("UIDPLUS"):
            return f"OK [APPENDUID {folder.uidvalidity} {format_sequence_set(uids)}] Append completed" + TIMING
        return "OK Append completed" + TIMING

    def _check_flags(self, command: str, flags: Iterable[str]) -> None:
        for f in flags:
            if f.startswith("\\") and f.title() not in SYSTEM_FLAGS:
                raise _bad(command, f"Invalid system flag {f.upper()}")

    def cmd_NAMESPACE(self, cmd: Command) -> str:
        prefix, delim = astring(self.names.prefix), astring(self.names.delimiter)
        self._send(b"* NAMESPACE ((" + prefix + b" " + delim + b")) NIL NIL\r\n")
        return "OK Namespace completed" + TIMING

    def cmd_ENABLE(self, cmd: Command) -> str:
        # Nothing we advertise needs enabling; Dovecot then sends no untagged ENABLED at all.
        return "OK Enabled" + TIMING

    def cmd_IDLE(self, cmd: Command) -> None:
        self.idling = cmd.tag
        self._send(b"+ idling\r\n")
        self._updates("IDLE")
        self.reader.expect_line()
        return None

    # Selected ---------------------------------------------------------------------------------

    def cmd_CHECK(self, cmd: Command) -> str:
        return "OK Check completed" + TIMING

    def _leave(self) -> None:
        self.view = None
        self.state = State.AUTHENTICATED

    def cmd_CLOSE(self, cmd: Command) -> str:
        view = self.view
        if not view.read_only:
            self.account.expunge(view.folder.path)  # silently: no EXPUNGE responses on CLOSE
        self._leave()
        return "OK Close completed" + TIMING

    def cmd_UNSELECT(self, cmd: Command) -> str:
        self._leave()
        return "OK Unselect completed" + TIMING

    def _expunge(self, uids: list[int] | None) -> str:
        view = self.view
        if not view.read_only:  # Dovecot answers OK on a read-only mailbox and removes nothing
            if self._quirk("imap_expunge", self, view.folder, uids) is None:
                self.account.expunge(view.folder.path, uids)
        return "OK Expunge completed" + TIMING

    def cmd_EXPUNGE(self, cmd: Command, uid: bool = False) -> str:
        if not uid:
            return self._expunge(None)
        if len(cmd.args) != 1 or not isinstance(cmd.args[0], str):
            raise _bad("UID EXPUNGE", "Invalid arguments")
        idx = self.view.resolve(cmd.args[0], uid=True)
        return self._expunge([self.view.uids[i] for i in idx])

    def _search(self, cmd: Command, uid: bool) -> str:
        from simulators.imap import search

        extensions = self._quirk("imap_search_keys", self)
        try:  # CHARSET, when given, is the first argument
            key = search.parse_search(cmd.args, extensions=extensions)
        except search.SearchSyntaxError as exc:
            if exc.reply:
                raise CommandFailed(exc.reply) from None
            if exc.badcharset:
                raise _no(f"[BADCHARSET ({' '.join(exc.badcharset)})] Unknown charset" + TIMING) from None
            raise _bad(cmd.name, str(exc)) from None
        view = self.view
        hits = search.evaluate(key, view.items, recent=view.recent)
        numbers = [view.uids[i] if uid else i + 1 for i in hits]
        self._send(("* SEARCH" + "".join(f" {n}" for n in numbers) + "\r\n").encode())
        return "OK Search completed" + TIMING

    def cmd_SEARCH(self, cmd: Command, uid: bool = False) -> str:
        return self._search(cmd, uid)


    def _fetch(self, cmd: Command, uid: bool) -> str:
        if len(cmd.args) != 2 or not isinstance(cmd.args[0], str):
            raise _bad(cmd.name, "Invalid arguments")
        view = self.view
        idx = view.resolve(cmd.args[0], uid=uid)
        atts = fetch.reply_order(parse_fetch_atts(cmd.args[1]))
        unknown = next((a.name for a in atts if a.name in EXTENSION_ATTS and not self.has_capability("X-GM-EXT-1")), None)
        if unknown:
            raise _bad(cmd.name, f"Unknown parameter: {unknown}")
        responses = self._fetch_responses(cmd.name, [(i + 1, view.items[i]) for i in idx], atts, uid)
        if self.streaming and len(idx) > 1 and fetch.streamable(atts):
            # Bulk pulls are written as the socket drains; later commands wait until it is done.
            self._out.append(Stream(responses))
            self._paused = True
        else:
            self._out.extend(responses)
        return "OK Fetch completed" + TIMING

    def _fetch_responses(self, name: str, picked: list, atts: list, uid: bool) -> Iterator[bytes]:
        view = self.view
        mark_seen = fetch.sets_seen(atts) and not view.read_only
        for seq, item in picked:
            with self.store.lock:  # taken per message, and never across a yield: a stream must not block
                data = self._quirk("imap_fetch_message", self, view.folder, item, atts)
                if data is None:
                    added = mark_seen and "\\Seen" not in item.flags
                    if added:
                        item.flags.add("\\Seen")
                        view.note_flag_changes((item.uid,))
                    extensions = None
                    if any(a.name in EXTENSION_ATTS for a in atts):
                        extensions = self._quirk("imap_fetch_items", self, view.folder, item)
                    try:
                        data = fetch.render_pieces(
                            seq, item, atts, uid_first=uid, recent=item.uid in view.recent, add_flags=added,
                            extensions=extensions,
                        )
                    except ValueError as exc:  # message.SectionError and friends: the item, not the session
                        raise _bad(name, str(exc)) from None
            pieces = [data] if isinstance(data, bytes) else data  # a large literal apart (render_pieces)
            size = sum(map(len, pieces))
            if self._garbles and size:  # (only then: a bulk FETCH is not copied again for nothing)
                pieces = [self._rewritten("FETCH", b"".join(pieces).removesuffix(b"\r\n"), item) + b"\r\n"]
                size = len(pieces[0])
            if size:
                pace = self._quirk("imap_pace", self)
                if pace:  # bytes per second: each response goes out when its share of time has passed
                    yield Delay(size / pace)
                self._tell("imap_transfer", self, "down", size)
                yield from pieces  # a large literal's bytes as their own output: never copied again
        if mark_seen:
            self.store.notify(self.account, view.folder)

    def cmd_FETCH(self, cmd: Command, uid: bool = False) -> str:
        return self._fetch(cmd, uid)

    def _store(self, cmd: Command, uid: bool) -> str:
        if len(cmd.args) < 3 or not isinstance(cmd.args[0], str) or not isinstance(cmd.args[1], str):
            raise _bad(cmd.name, "Invalid arguments")
        view = self.view
        idx = view.resolve(cmd.args[0], uid=uid)
        op = cmd.args[1].upper()
        silent = op.endswith(".SILENT")
        mode = op.removesuffix(".SILENT")
        values = cmd.args[2] if isinstance(cmd.args[2], list) and len(cmd.args) == 3 else cmd.args[2:]
        if mode.lstrip("+-") != "FLAGS":
            return self._store_extension(cmd, uid, mode, values, idx, silent)
        raw_flags = values
        flags = {_canonical_flag(_text(f)) for f in raw_flags}
        refusal = self._quirk("imap_flags_refused", self, "STORE", flags) if mode != "-FLAGS" else None
        if refusal is not None:
            raise CommandFailed(refusal)
        self._check_flags(cmd.name, flags)
        if "\\Recent" in flags:
            raise _bad(cmd.name, "Invalid system flag \\RECENT")
        if view.read_only:
            return "OK Store ignored with read-only mailbox" + TIMING
        known = set(view.keywords())
        changed = []
        for i in idx:
            item = view.items[i]
            before = set(item.flags)
            if mode == "FLAGS":
                item.flags = set(flags)
            elif mode == "+FLAGS":
                item.flags |= flags
            else:
                item.flags -= flags
            if item.flags != before:
                changed.append(i)
        new_keywords = {f for f in flags if not f.startswith("\\")} - known
        if new_keywords and mode != "-FLAGS":
            self._send_flags_update(view)
        if not silent:
            for i in changed:  # like Dovecot: only messages whose flags changed
                item = view.items[i]
                uid_part = f"UID {item.uid} " if uid else ""
                self._send(
                    f"* {i + 1} FETCH ({uid_part}FLAGS ".encode()
                    + fetch.format_flags(item.flags, item.uid in view.recent)
                    + b")\r\n"
                )
        if changed:
            view.note_flag_changes(view.uids[i] for i in changed)
            self.store.notify(self.account, view.folder)
        return "OK Store completed" + TIMING

    def _store_extension(self, cmd: Command, uid: bool, mode: str, values: list, idx: list[int], silent: bool) -> str:
        """STORE of an attribute other than FLAGS (Gmail's X-GM-LABELS): a quirk's, or BAD."""
        view = self.view
        items = [view.items[i] for i in idx]
        texts = [_text(v) for v in values]
        if view.read_only:  # as STORE FLAGS (Dovecot's words); nothing is asked of the quirk
            return "OK Store ignored with read-only mailbox" + TIMING
        data = self._quirk("imap_store_items", self, view.folder, items, mode.upper(), texts)
        if data is None:
            raise _bad(cmd.name, "Invalid arguments")
        if isinstance(data, str):  # the quirk's own refusal
            raise CommandFailed(data)
        if not silent:
            for i, item, value in zip(idx, items, data):
                uid_part = f"UID {item.uid} ".encode() if uid else b""
                self._send(b"* %d FETCH (" % (i + 1) + uid_part + value + b")\r\n")
        return "OK Store completed" + TIMING

    def _send_flags_update(self, view: MailboxView) -> None:
        keywords = view.keywords()
        system = "\\Answered \\Flagged \\Deleted \\Seen \\Draft"
        self._send("* FLAGS (" + " ".join([system, *keywords]) + ")\r\n")
        self._send("* OK [PERMANENTFLAGS (" + " ".join([system, *keywords, "\\*"]) + ")] Flags permitted.\r\n")

    def cmd_STORE(self, cmd: Command, uid: bool = False) -> str:
        return self._store(cmd, uid)


    def _copy(self, cmd: Command, uid: bool, move: bool) -> str:
        if len(cmd.args) != 2 or not isinstance(cmd.args[0], str):
            raise _bad(cmd.name, "Invalid arguments")
        view = self.view
        idx = view.resolve(cmd.args[0], uid=uid)
        dest = self._existing(cmd.args[1], create_hint=True)
        # MOVE out of an EXAMINEd mailbox still removes the originals: Dovecot 2.3 does so.
        src_uids, dst_uids = [], []
        for i in idx:
            item = view.items[i]
            copied = self.account.append(
                dest.path, item.raw, flags=item.flags - {"\\Recent"}, internaldate=item.internaldate,
                extra=item.extra,
            )
            src_uids.append(item.uid)
            dst_uids.append(copied.uid)
        code = ""
        if idx and self.has_capability("UIDPLUS"):
            code = f"[COPYUID {dest.uidvalidity} {format_sequence_set(src_uids)} {format_sequence_set(dst_uids)}] "
        if not move:
            return f"OK {code}Copy completed" + TIMING
        if code:
            self._send(f"* OK {code}Moved UIDs.\r\n")
        for i in idx:
            view.items[i].flags.add("\\Deleted")
        self.account.expunge(view.folder.path, src_uids)
        return "OK Move completed" + TIMING

    def cmd_COPY(self, cmd: Command, uid: bool = False) -> str:
        return self._copy(cmd, uid, move=False)


    def cmd_MOVE(self, cmd: Command, uid: bool = False) -> str:
        return self._copy(cmd, uid, move=True)



# Helpers -----------------------------------------------------------------------------------


def _raw(arg) -> bytes:
    if isinstance(arg, list):
        raise ImapSyntaxError("Unexpected list")
    if isinstance(arg, (bytes, bytearray)):
        return bytes(arg)
    return arg.encode("utf-8", "surrogateescape")


def _text(arg) -> str:
    return _raw(arg).decode("utf-8", "replace")


def _canonical_flag(flag: str) -> str:
    return flag.title() if flag.startswith("\\") else flag


def _append_messages(args: list, multi: bool) -> list[tuple[set[str], object, bytes | bytearray]]:
    """APPEND arguments after the mailbox → [(flags, internaldate or None, raw)]."""
    messages = []
    i = 0
    while i < len(args):
        flags: set[str] = set()
        when = None
        if isinstance(args[i], list):
            flags = {_canonical_flag(_text(f)) for f in args[i]}
            i += 1
        # A quoted date-time and a literal are both bytes: the date is followed by the message
        # (a bytearray when large: syntax.LARGE_LITERAL).
        if i + 1 < len(args) and isinstance(args[i + 1], (bytes, bytearray)) and fetch.looks_like_date_time(args[i]):
            when = fetch.parse_date_time(args[i])
            i += 1
        if i >= len(args) or not isinstance(args[i], (bytes, bytearray)):
            raise ImapSyntaxError("Invalid arguments.")
        messages.append((flags, when, args[i]))
        i += 1
        if not multi and i < len(args):
            raise ImapSyntaxError("Invalid arguments.")
    if not messages:
        raise ImapSyntaxError("Missing message")
    return messages
