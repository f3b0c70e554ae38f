"""Provider profiles: what a simulated provider advertises and how it behaves, as data files.

A profile is a YAML file in this folder (or any path given to ``load_profile``). It states
capabilities before and after login, the hierarchy delimiter and personal-namespace prefix,
special folders and their names, limits, and the quirks (``simulators.quirks``) with parameters.
Every server instance gets its own ``Profile`` object; nothing here is global.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simulators.quirks import QuirkSpec

PROFILE_DIR = Path(__file__).parent

# Profile keys for special folders → RFC 6154 special-use attributes.
SPECIAL_USE = {
    "sent": "\\Sent",
    "drafts": "\\Drafts",
    "trash": "\\Trash",
    "junk": "\\Junk",
    "archive": "\\Archive",
    "all": "\\All",
    "flagged": "\\Flagged",
}

# Profile keys for the non-mail (and Deleted Items) folders → (EWS distinguished folder id, folder
# class). Not RFC 6154 special-use: IMAP shows them as plain folders; EWS and the fixtures use them.
PIM_FOLDERS = {
    "calendar": ("calendar", "IPF.Appointment"),
    "contacts": ("contacts", "IPF.Contact"),
    "tasks": ("tasks", "IPF.Task"),
    "notes": ("notes", "IPF.StickyNote"),
    # Exchange's Deleted Items is a mail folder that may also hold contacts, events and tasks.
    "deleted": ("deleteditems", "IPF.Note"),
}


class ProfileError(ValueError):
    """A profile that cannot be found or does not validate; the message names the file."""


class ImapSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    greeting: str = "IMAP4rev1 server ready."
    capabilities_before_auth: list[str]
    capabilities_after_auth: list[str]
    delimiter: str = "/"
    # Personal namespace prefix, e.g. "INBOX." on Courier: every folder but INBOX is shown under it.
    namespace_prefix: str = ""
    case_insensitive_names: bool = False
    reserved_names: list[str] = []
    permanent_flags: list[str] = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\*"]
    max_connections_per_user: int | None = None
    # Messages larger than this are refused on APPEND (also advertised as APPENDLIMIT= when listed).
    append_limit: int | None = None
    # Idle timeout in seconds before the server says BYE (RFC 3501 asks for at least 30 minutes).
    autologout_seconds: int = 1800


class SmtpSettings(BaseModel):
    """The SMTP front (``simulators.smtp``); every field has a default so profiles without an
    ``smtp:`` block keep loading."""

    model_config = ConfigDict(extra="forbid")

    hostname: str = "mx.quirkmail.test"
    # Greeting text after "220 <hostname> ".
    banner: str = "ESMTP quirkmail"
    # Advertised as SIZE and enforced; Postfix's default message_size_limit.
    max_message_size: int = 10240000
    auth_mechanisms: list[str] = ["PLAIN", "LOGIN", "XOAUTH2"]
    # Refuse MAIL/RCPT/DATA before AUTH (a submission server) instead of accepting (an MX).
    require_auth: bool = False
    # Offer AUTH only after STARTTLS (most providers); off by default for plain loopback tests.
    auth_require_tls: bool = False


class Pop3Settings(BaseModel):
    """What the POP3 front advertises. The defaults answer like Dovecot 2.3's POP3 server."""

    model_config = ConfigDict(extra="forbid")

    greeting: str = "Dovecot ready."
    # CAPA lines. "STLS" is dropped once TLS is active (or when the server has no TLS); the
    # "SASL ..." line also says which mechanisms AUTH accepts (PLAIN, LOGIN, XOAUTH2).
    capabilities_before_auth: list[str] = [
        "CAPA", "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "STLS", "USER", "SASL PLAIN LOGIN",
    ]
    capabilities_after_auth: list[str] = ["CAPA", "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"]
    # APOP (RFC 1939 §7): the greeting then ends with a <timestamp> challenge. Dovecot has it off.
    apop: bool = False
    login_reply: str = "Logged in."
    # RFC 1939 §3: an autologout timer, if any, is at least 10 minutes (Dovecot: 10 minutes).
    autologout_seconds: int = 600


class EwsSettings(BaseModel):
    """The EWS front (``simulators.ews``); defaults answer like Exchange 2016 on premises."""

    model_config = ConfigDict(extra="forbid")

    # RequestServerVersion schema name the server reports in ServerVersionInfo.
    server_version: str = "Exchange2016"
    # Most items one FindItem page returns whatever MaxEntriesReturned asks (EWSFindCountLimit;
    # 1000 on Exchange Online). None = no cap.
    max_page_size: int | None = None


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str
    # Special folders by key (see SPECIAL_USE and PIM_FOLDERS) → folder path as a list of parts.
    special_folders: dict[str, list[str]] = Field(default_factory=dict)
    imap: ImapSettings
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    # Optional so profiles written before the POP3 front still load (they get Dovecot's answers).
    pop3: Pop3Settings = Field(default_factory=Pop3Settings)
    # Optional: profiles without an ``ews:`` block get Exchange 2016's answers.
    ews: EwsSettings = Field(default_factory=EwsSettings)
    quirks: list[QuirkSpec] = []
    # Transport faults (simulators.faults), same {name, params} shape as quirks.
    faults: list[QuirkSpec] = []

    def special_use_of(self, path: tuple[str, ...]) -> str | None:
        for key, parts in self.special_folders.items():
            if tuple(parts) == tuple(path) and key in SPECIAL_USE:
                return SPECIAL_USE[key]
        return None

    def with_quirks(self, extra: list[QuirkSpec]) -> Profile:
        """A copy with more quirks; a quirk named again replaces the profile's parameters."""
        names = {q.name for q in extra}
        kept = [q for q in self.quirks if q.name not in names]
        return self.model_copy(update={"quirks": kept + list(extra)})

    def with_faults(self, extra: list[QuirkSpec]) -> Profile:
        """A copy with more faults; a fault named again replaces the profile's parameters."""
        names = {f.name for f in extra}
        kept = [f for f in self.faults if f.name not in names]
        return self.model_copy(update={"faults": kept + list(extra)})


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a built-in profile by name (``generic``) or a profile file by path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = PROFILE_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ProfileError(f"no profile {str(name_or_path)!r} (built-in: {', '.join(profile_names())})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Profile.model_validate(data)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ProfileError(f"{path}: {where}: {first['msg']}") from None
