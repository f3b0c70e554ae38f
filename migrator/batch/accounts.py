"""The batch file: one mailbox pair a line, parsed without touching the network or the secrets.

Two formats, told apart by the first line that is not blank or a ``#`` comment:

* quirkmail CSV, with a header naming the columns (any order; ``id`` and the ``*_user`` columns
  optional)::

      source,source_user,source_secret,dest,dest_user,dest_secret,id
      imaps://imap.old.example,alice,env:ALICE_OLD,imaps://mail.new.example,alice@new.example,file:secrets/alice,alice
      old.example:143,bob,file:/run/secrets/bob-old,imap://bob@new.example,,env:BOB_NEW,

  ``source``/``dest`` is a URL (``migrator.urls.ServerURL``) or ``host[:port]`` (then
  ``imap://``, STARTTLS when offered). Optional ``pim``, ``pim_user``, ``pim_secret``: where an
  EWS source's contacts, calendars, tasks and notes go (``dav://`` / ``dav+http://`` CardDAV/CalDAV,
  or ``ews://`` / ``ews+http://``), as ``--pim-to`` does for one account; an empty ``pim_secret``
  means a DAV server without authentication. A secret is a *reference*: ``env:NAME`` or ``file:PATH``
  (relative to the batch file's folder), read when the account starts. Anything else is taken as
  a plain password, accepted with a warning (``plain:`` says so explicitly, still warned).

* imapsync's massive-migration lines (``FAQ.Massive``, ``examples/sync_loop_unix.sh``)::

      host1;user1;password1;host2;user2;password2;[extra imapsync options]

  Passwords there are plain (warned) unless written as ``env:``/``file:`` references. Of the
  extra options ``--port1/2 N``, ``--ssl1/2``, ``--tls1/2`` and ``--notls1/2`` are understood;
  others are ignored with a warning naming them.

Every problem of the file is collected and raised together (``BatchFileError``, exit code 2)
with its line number; nothing runs from a file that has one. A warning never quotes a password.
"""

from __future__ import annotations

import csv
import io
import re
import shlex
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit

from migrator.errors import UsageError
from migrator.urls import Secret, ServerURL

COLUMNS = ("source", "source_user", "source_secret", "dest", "dest_user", "dest_secret", "id",
           "pim", "pim_user", "pim_secret")
REQUIRED = ("source", "source_secret", "dest", "dest_secret")
PIM_SCHEMES = ("dav", "dav+http", "ews", "ews+http")
IMAPSYNC_FIELDS = 6  # host1 user1 password1 host2 user2 password2, then extra options
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")


class BatchFileError(UsageError):
    """The batch file has problems; ``problems`` lists each with its line number."""

    def __init__(self, name: str, problems: list[str]):
        super().__init__(f"{name}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class SecretRef:
    """Where an account's password (or OAuth token) comes from; never holds a reference's value."""

    kind: Literal["env", "file", "plain", "none"]
    ref: str = ""  # the variable name or the file path
    plain: Secret | None = None

    def __str__(self) -> str:
        return "plain:***" if self.kind == "plain" else f"{self.kind}:{self.ref}"

    __repr__ = __str__


@dataclass(frozen=True)
class AccountLine:
    line: int  # 1-based line number in the batch file
    id: str  # file-name safe; names the account's log, checkpoint and result files
    source: ServerURL
    source_secret: SecretRef
    dest: ServerURL
    dest_secret: SecretRef
    pim: ServerURL | None = None  # an EWS source's contacts/calendars/tasks/notes go here (CSV column pim)
    pim_secret: SecretRef | None = None

    @property
    def host(self) -> str:
        """The source server the per-host cap counts against."""
        return f"{self.source.host}:{self.source.port}"

    @property
    def dest_hosts(self) -> tuple[str, ...]:
        """The destination servers (mail, and PIM when given) the per-dest-host cap counts against."""
        hosts = [f"{url.host}:{url.port}" for url in (self.dest, self.pim) if url is not None]
        return tuple(dict.fromkeys(hosts))

    @property
    def source_account(self) -> tuple[str, str]:
        """Two lines migrating one source account never run at the same time."""
        return (self.host, self.source.user)


@dataclass
class BatchFile:
    format: Literal["csv", "imapsync"]
    accounts: list[AccountLine] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def load_batch(path: Path) -> BatchFile:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # a spreadsheet's BOM is not a column name
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read batch file {path}: {exc}") from None
    return parse_batch(text, name=str(path), base=Path(path).parent)


def parse_batch(text: str, *, name: str = "batch file", base: Path = Path(".")) -> BatchFile:
    """All accounts of the file, or ``BatchFileError`` listing every bad line."""
    lines = [(n, raw) for n, raw in enumerate(text.splitlines(), 1) if raw.strip() and not raw.lstrip().startswith("#")]
    if not lines:
        raise BatchFileError(name, ["no accounts (only blank or # comment lines)"])
    first = lines[0][1].lower()
    is_header = "source" in [c.strip() for c in next(csv.reader([first]))]
    parser = _CsvParser(base) if is_header else _ImapsyncParser(base)
    rows = parser.rows(lines)
    _assign_ids(rows)
    _check_duplicates(rows, parser.problems)
    if parser.problems:
        raise BatchFileError(name, parser.problems)
    batch = BatchFile(format="csv" if is_header else "imapsync", accounts=[r.account() for r in rows])
    batch.warnings = parser.warnings + _plain_warnings(batch.accounts)
    return batch


@dataclass
class _Row:
    line: int
    source: ServerURL
    source_secret: SecretRef
    dest: ServerURL
    dest_secret: SecretRef
    id: str = ""
    pim: ServerURL | None = None
    pim_secret: SecretRef | None = None

    def account(self) -> AccountLine:
        return AccountLine(self.line, self.id, self.source, self.source_secret, self.dest, self.dest_secret,
                           self.pim, self.pim_secret)


class _Parser:
    def __init__(self, base: Path):
        self.base = base
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def endpoint(self, n: int, role: str, text: str, user: str, **overrides) -> ServerURL | None:
        text, user = text.strip(), user.strip()
        if not text:
            self.problems.append(f"line {n}: no {role} server")
            return None
        if "://" not in text:
            scheme = overrides.pop("scheme", "imap")
            text = f"{scheme}://{text}"
        parts = urlsplit(text)
        if user and parts.username and parts.username != quote(user, safe=""):
            self.problems.append(f"line {n}: {role} user given twice, differently ({parts.username!r} in the URL, {user!r})")
            return None
        if user and not parts.username:
            scheme, rest = text.split("://", 1)
            text = f"{scheme}://{quote(user, safe='')}@{rest}"
        try:
            url = ServerURL.parse(text)
        except UsageError as exc:
            self.problems.append(f"line {n}: {role}: {exc}")
            return None
        if overrides:
            url = ServerURL.parse(_with(url, **overrides))
        return url

    def secret(self, n: int, role: str, text: str, url: ServerURL | None) -> SecretRef | None:
        text = text.strip()
        if not text:
            if url is not None and url.scheme == "lmtp":
                return SecretRef("none")  # LMTP delivers without a login
            self.problems.append(f"line {n}: no {role} secret (env:NAME, file:PATH or a password)")
            return None
        kind, _, rest = text.partition(":")
        if kind == "env":
            if not _ENV_NAME.fullmatch(rest):
                self.problems.append(f"line {n}: {role} secret: {rest!r} is not an environment variable name")
                return None
            return SecretRef("env", rest)
        if kind == "file":
            if not rest:
                self.problems.append(f"line {n}: {role} secret: file: without a path")
                return None
            path = Path(rest).expanduser()
            return SecretRef("file", str(path if path.is_absolute() else self.base / path))
        return SecretRef("plain", plain=Secret(rest if kind == "plain" else text))


class _CsvParser(_Parser):
    def rows(self, lines: list[tuple[int, str]]) -> list[_Row]:
        header_line, header = lines[0]
        columns = [c.strip().lower() for c in next(csv.reader([header]))]
        unknown = [c for c in columns if c not in COLUMNS]
        missing = [c for c in REQUIRED if c not in columns]
        if unknown or missing:
            self.problems.append(
                f"line {header_line}: header: "
                + "; ".join(filter(None, [unknown and f"unknown column(s) {', '.join(unknown)}",
                                          missing and f"missing column(s) {', '.join(missing)}"]))
                + f" (columns: {', '.join(COLUMNS)})"
            )
            return []
        rows = []
        for n, raw in lines[1:]:
            values = next(csv.reader(io.StringIO(raw)))
            if len(values) > len(columns):
                self.problems.append(f"line {n}: {len(values)} fields, the header names {len(columns)}")
                continue
            cell = dict(zip(columns, values + [""] * (len(columns) - len(values))))
            row = self._row(n, cell)
            if row:
                rows.append(row)
        return rows

    def _row(self, n: int, cell: dict[str, str]) -> _Row | None:
        src = self.endpoint(n, "source", cell["source"], cell.get("source_user", ""))
        dst = self.endpoint(n, "dest", cell["dest"], cell.get("dest_user", ""))
        src_secret = self.secret(n, "source", cell["source_secret"], src)
        dst_secret = self.secret(n, "dest", cell["dest_secret"], dst)
        if not (src and dst and src_secret and dst_secret):
            return None
        account_id = cell.get("id", "").strip()
        if account_id and _ID_UNSAFE.search(account_id):
            self.problems.append(f"line {n}: id {account_id!r}: use letters, digits and . _ @ + - only")
            return None
        pim = self._pim(n, cell, src)
        if pim is False:
            return None
        return _Row(n, src, src_secret, dst, dst_secret, account_id, *(pim or (None, None)))

    def _pim(self, n: int, cell: dict[str, str], src: ServerURL) -> tuple[ServerURL, SecretRef] | None | bool:
        """The line's PIM destination; None when it has none, False when it is wrong (a problem noted)."""
        if not cell.get("pim", "").strip():
            if cell.get("pim_user", "").strip() or cell.get("pim_secret", "").strip():
                self.problems.append(f"line {n}: pim_user/pim_secret without a pim destination")
                return False
            return None
        url = self.endpoint(n, "pim", cell["pim"], cell.get("pim_user", ""))
        if url is None:
            return False
        if url.scheme not in PIM_SCHEMES:
            self.problems.append(f"line {n}: pim: {url.scheme}:// takes no contacts or calendars "
                                 f"(use {', '.join(s + '://' for s in PIM_SCHEMES)})")
            return False
        if not src.scheme.startswith("ews"):
            self.problems.append(f"line {n}: pim: contacts, calendars, tasks and notes come from an ews source, "
                                 f"not {src.scheme}://")
            return False
        text = cell.get("pim_secret", "").strip()
        if not text and url.scheme.startswith("dav"):
            return url, SecretRef("none")  # a DAV server without authentication (Radicale --auth-type=none)
        secret = self.secret(n, "pim", text, url)
        return (url, secret) if secret else False


class _ImapsyncParser(_Parser):
    def rows(self, lines: list[tuple[int, str]]) -> list[_Row]:
        rows = []
        for n, raw in lines:
            fields = raw.rstrip("\r\n").split(";")
            if len(fields) < IMAPSYNC_FIELDS:
                self.problems.append(f"line {n}: {len(fields)} ';'-separated fields, imapsync lines have "
                                     "host1;user1;password1;host2;user2;password2;")
                continue
            h1, u1, p1, h2, u2, p2 = fields[:IMAPSYNC_FIELDS]
            extra = self._extras(n, ";".join(fields[IMAPSYNC_FIELDS:]))
            if extra is None:
                continue
            src = self.endpoint(n, "source", h1, u1, **extra["1"])
            dst = self.endpoint(n, "dest", h2, u2, **extra["2"])
            src_secret, dst_secret = self.secret(n, "source", p1, src), self.secret(n, "dest", p2, dst)
            if src and dst and src_secret and dst_secret:
                rows.append(_Row(n, src, src_secret, dst, dst_secret))
        return rows

    def _extras(self, n: int, text: str) -> dict[str, dict] | None:
        """The imapsync options we can honour, per side ("1" source, "2" destination)."""
        out: dict[str, dict] = {"1": {}, "2": {}}
        try:
            words = shlex.split(text)
        except ValueError as exc:
            self.problems.append(f"line {n}: extra options: {exc}")
            return None
        ignored = []
        i = 0
        while i < len(words):
            word = words[i]
            m = re.fullmatch(r"--(port|ssl|tls|notls)([12])", word)
            if not m:
                ignored.append(word)
            elif m[1] == "port":
                if i + 1 >= len(words) or not words[i + 1].isdigit():
                    self.problems.append(f"line {n}: {word} needs a port number")
                    return None
                out[m[2]]["port"] = int(words[i + 1])
                i += 1
            elif m[1] == "ssl":
                out[m[2]]["scheme"] = "imaps"
            else:
                out[m[2]]["starttls"] = "required" if m[1] == "tls" else "no"
            i += 1
        if ignored:
            self.warnings.append(f"line {n}: imapsync option(s) ignored: {' '.join(ignored)}")
        return out


def _with(url: ServerURL, *, scheme: str | None = None, port: int | None = None, starttls: str | None = None) -> str:
    """The URL text of ``url`` with imapsync's --portN/--sslN/--tlsN applied."""
    scheme = scheme or url.scheme
    port = port or (993 if scheme == "imaps" and url.port == 143 else url.port)
    query = f"?starttls={starttls}" if starttls and scheme != "imaps" else ""
    return f"{scheme}://{quote(url.user, safe='')}@{url.host}:{port}{query}"


def _assign_ids(rows: list[_Row]) -> None:
    """``user@host`` for each line without an id; ``user@host_port`` when that is not unique; the
    line number as a last resort — stable as long as the file's lines stay the same."""
    def candidates(r: _Row) -> tuple[str, str]:
        short = _ID_UNSAFE.sub("_", f"{r.source.user}@{r.source.host}")
        return short, f"{short}_{r.source.port}"

    unnamed = [r for r in rows if not r.id]
    uses = Counter(c for r in unnamed for c in set(candidates(r)))
    taken = {r.id for r in rows if r.id}
    for r in unnamed:
        unique = [c for c in candidates(r) if uses[c] == 1 and c not in taken]
        r.id = unique[0] if unique else f"{candidates(r)[1]}-line{r.line}"


def _check_duplicates(rows: list[_Row], problems: list[str]) -> None:
    ids: dict[str, int] = {}
    pairs: dict[tuple, int] = {}
    for r in rows:
        if r.id in ids:
            problems.append(f"line {r.line}: id {r.id!r} already used on line {ids[r.id]}")
        ids.setdefault(r.id, r.line)
        pair = (r.source.display(), r.dest.display())
        if pair in pairs:
            problems.append(f"line {r.line}: repeats line {pairs[pair]} (same source and destination)")
        pairs.setdefault(pair, r.line)


def _plain_warnings(accounts: list[AccountLine]) -> list[str]:
    plain = [f"{a.line}" for a in accounts
             if "plain" in (a.source_secret.kind, a.dest_secret.kind, a.pim_secret.kind if a.pim_secret else "")]
    if not plain:
        return []
    return [f"plain password(s) in the batch file on line(s) {', '.join(plain)}: accepted, but anyone who "
            "can read the file has them; prefer env:NAME or file:PATH"]
