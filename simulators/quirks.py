"""The quirk registry: provider behaviours as named, parameterised, registered data.

Like Toxiproxy's toxics, a quirk is a record ``{name, params}`` in a profile (or given on the
command line as ``name:key=value,key=value``). Each name maps to a registered ``Quirk`` subclass
that hooks one or more points of a protocol core. Every server instance builds its own quirk
objects from its own profile: there are no global switches and nothing to reset.

The protocol cores call the hooks listed on ``Quirk``; a hook returns ``None`` to let the normal
behaviour run, or a value that replaces it (what each hook may return is documented on the hook).
Quirk classes document the provider, the reply bytes and the source of the report in their
docstring; ``quirkmail profiles`` prints them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError


class QuirkError(ValueError):
    """An unknown quirk name, or parameters that do not fit the quirk."""


class QuirkSpec(BaseModel):
    """A quirk as data: its registered name and its parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    params: dict[str, Any] = {}

    @classmethod
    def parse(cls, text: str) -> QuirkSpec:
        """``"m365-throttled-backoff:after=200,backoff_ms=299609"`` → QuirkSpec."""
        name, _, rest = text.partition(":")
        params: dict[str, Any] = {}
        for pair in filter(None, (p.strip() for p in rest.split(","))):
            key, eq, value = pair.partition("=")
            if not eq:
                raise QuirkError(f"quirk {name!r}: parameter {pair!r} is not key=value")
            params[key.strip()] = _scalar(value.strip())
        return cls(name=name.strip(), params=params)


def _scalar(value: str) -> Any:
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


class Quirk:
    """Base of every registered behaviour.

    Subclasses set ``name``, ``protocols`` (a subset of {"imap", "pop3", "smtp", "ews"}) and
    optionally ``Params`` (a pydantic model; unknown parameters are refused), and override the
    hooks they need. Hooks are added here, with a no-op default, as the protocol cores grow.
    """

    name: ClassVar[str] = ""
    protocols: ClassVar[frozenset[str]] = frozenset()

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, params: BaseModel):
        self.params = params

    # IMAP hooks (simulators.imap.engine). Each returns None for the normal behaviour. A "reply"
    # is the tagged reply text without the tag, e.g. "NO Mailbox already exists".

    def imap_names(self, delimiter: str, prefix: str) -> tuple[str, str] | None:
        """(hierarchy delimiter, personal namespace prefix) instead of the profile's; asked once
        per session, before anything is named."""
        return None

    def imap_untagged(self, session: Any, command: str, line: bytes, item: Any = None) -> bytes | None:
        """A rewritten untagged reply of LIST/LSUB, STATUS or FETCH (``line`` without its CRLF;
        a FETCH response whole, literals included); ``item`` is the Folder of a LIST/STATUS line,
        the MailItem of a FETCH response. For malformed replies and raw UTF-8 names."""
        return None

    def imap_greeting(self, session: Any) -> str | None:
        """The greeting text after ``* OK `` instead of the profile's."""
        return None

    def imap_capabilities(self, caps: list[str], authenticated: bool) -> list[str] | None:
        """A changed capability list (before or after login)."""
        return None

    def imap_command(self, session: Any, command: Any) -> str | tuple[list[str], str] | None:
        """A reply that replaces any legal command before it runs (throttling, refusals); or
        (untagged lines without CRLF, tagged reply)."""
        return None

    def imap_login(self, session: Any, user: str, password: str) -> str | None:
        """A reply that refuses LOGIN / AUTHENTICATE (app passwords, OAuth only ...)."""
        return None

    def imap_resolve_folder(self, session: Any, path: tuple[str, ...]) -> tuple[str, ...] | None:
        """The store path a client's folder path names when it is not found as given."""
        return None

    def imap_create(self, session: Any, path: tuple[str, ...]) -> str | None:
        """A reply that refuses creating (or renaming to) ``path``."""
        return None

    def imap_select(self, session: Any, folder: Any, read_only: bool) -> str | None:
        """A reply that refuses SELECT / EXAMINE of ``folder``."""
        return None

    def imap_folder_messages(self, session: Any, folder: Any) -> list | None:
        """The MailItems a folder shows over IMAP instead of its mail (e.g. made-up ones for
        non-mail folders); must give the same UIDs for the same state."""
        return None

    def imap_fetch_message(self, session: Any, folder: Any, item: Any, atts: list) -> bytes | None:
        """The FETCH response bytes for one message instead of the normal ones (b"" for none)."""
        return None

    def imap_append(self, session: Any, folder: Any, raw: bytes, flags: set, when: Any) -> int | None:
        """Store one APPENDed message in the quirk's own way; return the UID APPENDUID reports
        (Gmail: file it in All Mail too, or store nothing for a duplicate)."""
        return None

    def imap_expunge(self, session: Any, folder: Any, uids: list[int] | None) -> list[int] | None:
        """Expunge in the quirk's own way (Gmail: All Mail removes every copy); the removed UIDs."""
        return None

    def imap_fetch_items(self, session: Any, folder: Any, item: Any) -> dict[str, bytes] | None:
        """Values of extension FETCH items for one message, e.g. {"X-GM-MSGID": b"1278455344230334865"}."""
        return None

    def imap_search_keys(self, session: Any) -> dict[str, Any] | None:
        """Extension SEARCH keys taking one string: name → callable(str) → a
        simulators.imap.search.SearchKey (Gmail: X-GM-RAW); it raises SearchSyntaxError."""
        return None

    def imap_store_items(self, session: Any, folder: Any, items: list, mode: str, values: list[str]) -> list[bytes] | str | None:
        """STORE of an attribute other than FLAGS (``mode`` like "+X-GM-LABELS", upper-cased) on
        ``items``: the FETCH data to report for each (b"X-GM-LABELS (\\Inbox)"), a refusal
        reply ("BAD ..."), or None: not this quirk's attribute."""
        return None

    def imap_append_size(self, session: Any, size: int) -> str | None:
        """A reply that refuses an APPEND of ``size`` bytes (asked when the literal is announced and
        again before storing: answer from state, do not count calls)."""
        return None

    def imap_message_refused(self, session: Any, raw: bytes) -> str | None:
        """A reply that refuses an APPENDed message for its content (Exchange: over-long lines)."""
        return None

    def imap_flags_refused(self, session: Any, command: str, flags: set) -> str | None:
        """A reply that refuses an APPEND or STORE for its flags (``command``: "APPEND" or "STORE")."""
        return None

    def imap_stored_flags(self, session: Any, flags: set) -> set | None:
        """The flags an accepted APPEND really stores, when the server drops some silently."""
        return None

    def imap_appended(self, session: Any, folder: Any, item: Any) -> None:
        """Told after an APPEND stored ``item`` (a MailItem) in ``folder`` (servers that react to mail)."""
        return None

    def imap_permanent_flags(self, session: Any, folder: Any, read_only: bool, flags: list) -> tuple[list, str] | None:
        """(flags, text) of the ``* OK [PERMANENTFLAGS (...)] text`` line of SELECT/EXAMINE."""
        return None

    def imap_reply(self, session: Any, reply: str) -> str | None:
        """A rewritten tagged reply (text without the tag), e.g. with a suffix appended."""
        return None

    def imap_error_limit(self) -> tuple[int, str, bool] | None:
        """(errors before ``* BYE``, the BYE text, whether NO replies count as errors too)."""
        return None

    def imap_connection_limit(self) -> tuple[int, str] | None:
        """(connections per user, refusal reply) instead of the profile's limit and Dovecot's words."""
        return None

    def imap_bye(self, session: Any, command: Any) -> str | None:
        """A BYE text (after ``* BYE ``) that ends the connection instead of running ``command``."""
        return None

    def imap_delay(self, session: Any, command: Any) -> float | None:
        """Seconds the reply to ``command`` (which has run) is held back: a slow server."""
        return None

    def imap_pace(self, session: Any) -> float | None:
        """Bytes per second at which this session's FETCH responses trickle (None: full speed)."""
        return None

    def imap_session_end(self, session: Any) -> None:
        """Told once when a session's connection is gone (LOGOUT, a drop, a BYE)."""
        return None

    def imap_transfer(self, session: Any, direction: str, nbytes: int) -> None:
        """Told of message bytes that travelled: ``"down"`` a FETCH response, ``"up"`` an APPENDed
        message. A notification: every quirk hears it, the return value is ignored."""
        return None

    def imap_sasl_failure(self, session: Any, mechanism: str, reply: str) -> tuple[str, str] | None:
        """(base64 challenge, final reply) for a refused AUTHENTICATE: the challenge goes out as a
        ``+`` continuation and the final reply only after the client's answer (Gmail's XOAUTH2)."""
        return None

    # XOAUTH2 hooks, asked by the IMAP and POP3 fronts alike (``protocol``: "imap" or "pop3").

    def oauth_check(self, protocol: str, user: str, token: str, account: Any) -> bool | str | None:
        """Whether ``token`` is a valid bearer token for ``account`` (a store Account, None when the
        user is unknown): True, False, or a refusal reply in the front's words (IMAP ``NO ...``,
        POP3 ``-ERR ...``). None = the default rule: the account's password doubles as its token."""
        return None

    def oauth_logged_in(self, protocol: str, user: str, token: str) -> None:
        """Told after an XOAUTH2 login with ``token`` succeeded (for quirks that count logins)."""
        return None

    # POP3 hooks (simulators.pop3.engine). Each returns None for the normal behaviour. A "reply"
    # is the whole status line without CRLF, e.g. "-ERR [IN-USE] Mailbox is locked".

    def pop3_greeting(self, session: Any) -> str | None:
        """The greeting text after ``+OK `` instead of the profile's (an APOP challenge is appended)."""
        return None

    def pop3_capabilities(self, caps: list[str], authenticated: bool) -> list[str] | None:
        """Changed CAPA lines (before or after login)."""
        return None

    def pop3_command(self, session: Any, name: str, args: str) -> str | None:
        """A reply that replaces a command before it runs (``name`` upper-cased)."""
        return None

    def pop3_login(self, session: Any, user: str, password: str, mechanism: str, valid: bool) -> str | None:
        """A reply that refuses a login (``mechanism``: USER, APOP, PLAIN, LOGIN or XOAUTH2;
        ``valid``: whether the credentials were right)."""
        return None

    def pop3_logged_in(self, session: Any) -> None:
        """Told after a login succeeded (for quirks that remember logins)."""
        return None

    def pop3_uidl(self, session: Any, number: int, item: Any, uidl: str) -> str | None:
        """The UIDL of message ``number`` instead of ``uidl``."""
        return None

    def pop3_retr_cut(self, session: Any, number: int) -> int | None:
        """Bytes of the RETR reply of message ``number`` to write before closing the connection."""
        return None

    def pop3_retrieved(self, session: Any, number: int) -> None:
        """Told after message ``number`` was sent whole by RETR (may call ``session.mark_deleted``)."""
        return None

    def pop3_session_end(self, session: Any) -> None:
        """Told once when a session ends (QUIT, a dropped connection, a timeout, a cut)."""
        return None

    # SMTP hooks (simulators.smtp.handler). Each returns None for the normal behaviour. A "reply"
    # is the full reply text without CRLF, e.g. "451 4.7.1 Greylisting in action, please come back
    # later"; lines of a multi-line reply are joined by CRLF. A 421 reply closes the connection.
    # ``conn`` is the connection's simulators.smtp.handler.Connection (user, messages, clock).

    def smtp_ehlo(self, conn: Any, keywords: list[str]) -> list[str] | None:
        """Changed EHLO keywords (the lines after the greeting, without "250-": "SIZE 10240000" ...)."""
        return None

    def smtp_auth(self, conn: Any, mechanism: str, user: str, ok: bool) -> str | tuple[str, str] | None:
        """A reply that replaces AUTH's outcome (``ok``: the credentials were right); or
        (base64 challenge, final reply): a ``334`` continuation, the reply after the client's answer."""
        return None

    def smtp_mail(self, conn: Any, sender: str, size: int | None) -> str | None:
        """A reply that refuses MAIL FROM (``size`` from the SIZE= parameter, if given)."""
        return None

    def smtp_rcpt(self, conn: Any, sender: str, recipient: str, account: Any) -> str | None:
        """A reply that refuses RCPT TO of a known recipient (``account``, a store Account)."""
        return None

    def smtp_data(self, conn: Any, accounts: list, size: int) -> str | None:
        """A reply that refuses the message after DATA (``size`` bytes, for ``accounts``)."""
        return None

    # EWS hooks (simulators.ews.engine / operations). Each returns None for the normal behaviour.
    # ``ctx`` is the request's simulators.ews.engine.EwsContext (account, profile, store).

    def ews_request(self, ctx: Any, operation: str) -> Any:
        """A response that replaces the whole request (throttling): an ews.engine.HttpResponse, or
        an ews.soap.SoapFault sent as a SOAP Fault."""
        return None

    def ews_folder_items(self, ctx: Any, folder: Any, items: list) -> list | None:
        """The items (MailItem / PimItem) a folder shows instead of those of its own kind."""
        return None

    def ews_page(self, ctx: Any, folder: Any, page: Any) -> Any:
        """A changed ews.paging.Page (slice and IndexedPagingOffset / TotalItemsInView /
        IncludesLastItemInRange) for one FindItem page."""
        return None

    def ews_item_error(self, ctx: Any, operation: str, folder: Any, item: Any, shape: Any) -> tuple[str, str] | None:
        """(ResponseCode, MessageText) that replaces one item of a GetItem response."""
        return None

    @classmethod
    def summary(cls) -> str:
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


REGISTRY: dict[str, type[Quirk]] = {}


def first_answer(quirks: Iterable[Quirk], hook: str, *args: Any) -> Any:
    """The first quirk's answer to ``hook`` that is not None; None: the normal behaviour runs."""
    for quirk in quirks:
        answer = getattr(quirk, hook)(*args)
        if answer is not None:
            return answer
    return None


def tell_all(quirks: Iterable[Quirk], hook: str, *args: Any) -> None:
    """A notification hook (``imap_transfer``, ``pop3_session_end``): every quirk hears it."""
    for quirk in quirks:
        getattr(quirk, hook)(*args)


def adjusted(quirks: Iterable[Quirk], hook: str, value: Any, *args: Any) -> Any:
    """``value`` passed through each quirk's ``hook(value, *args)`` in turn; a None answer leaves
    it as it was (``imap_capabilities``, ``pop3_capabilities``)."""
    for quirk in quirks:
        changed = getattr(quirk, hook)(value, *args)
        if changed is not None:
            value = changed
    return value


def register(cls: type[Quirk]) -> type[Quirk]:
    """Class decorator: make a quirk available by its name."""
    if not cls.name:
        raise TypeError(f"{cls.__qualname__} has no name")
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise TypeError(f"quirk {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def build(spec: QuirkSpec) -> Quirk:
    _load_builtin_quirks()
    try:
        cls = REGISTRY[spec.name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY)) or "none"
        raise QuirkError(f"unknown quirk {spec.name!r} (known: {known})") from None
    try:
        params = cls.Params(**spec.params)
    except ValidationError as exc:
        raise QuirkError(f"quirk {spec.name!r}: {exc.errors()[0]['msg']} ({exc.errors()[0]['loc']})") from None
    return cls(params)


def build_all(specs: Iterable[QuirkSpec], protocol: str) -> list[Quirk]:
    """The quirk objects of one server instance that apply to ``protocol``."""
    quirks = [build(s) for s in specs]
    return [q for q in quirks if protocol in q.protocols]


def _load_builtin_quirks() -> None:
    # Each front registers its quirks in its own module; importing them fills REGISTRY.
    import importlib

    for module in (
        "simulators.imap.quirks", "simulators.imap.quirks_auth", "simulators.imap.quirks_microsoft",
        "simulators.imap.quirks_names",
        "simulators.imap.gmail", "simulators.smtp.quirks", "simulators.pop3.quirks", "simulators.ews.quirks",
        "simulators.imap.quirks_limits",
    ):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
