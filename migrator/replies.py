"""What a server's refusal means and what the migration does about it. Pure: reply in, verdict out.

SMTP/LMTP delivery (RFC 5321 reply codes, RFC 3463 enhanced status codes), by what the flow does:

    reconnect    421 (any stage): the server closes the channel; the message was not taken, so
                 it is sent again on a new connection (Gmail's "421 4.7.0 Try again later")
    retry-later  other 4xx: greylisting ("451 4.7.1 Greylisting in action"), a busy server; the
                 message is sent again after a pause and reported ``deferred`` if it never goes
    stop-run     a full mailbox (x.2.2: "452 4.2.2 ... over quota", "552 5.2.2"): every later
                 message would be refused too, so the run stops like IMAP's [OVERQUOTA]
    skip         a permanent refusal of this message: ``too-large`` (x.3.4, 5.2.3: Gmail's
                 "552 5.3.4 Your message exceeded Google's message size limits") or ``refused``

POP3 login refusals (RFC 2449 §8 response codes, RFC 3206): ``[LOGIN-DELAY]`` (logged in too
soon after the last login), ``[IN-USE]`` (another session holds the maildrop lock) and
``[SYS/TEMP]`` say "come back later", not "wrong password".

``auth_hint`` explains login refusals whose fix is on the account, not in the password;
``oauth_refusal`` explains a refused XOAUTH2 login (token expired or invalid) with the provider's
decoded error report (xoauth2-error-continuation: Gmail's base64 JSON).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from migrator.backoff import backoff_delay

RECONNECT, RETRY_LATER, STOP_RUN, SKIP = "reconnect", "retry-later", "stop-run", "skip"

_CODE = re.compile(r"\s*([2-5]\d\d)[ -]?")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_TOO_LARGE = re.compile(r"size limit|too (?:large|big)|message size exceeds|exceeds? .*maximum size", re.IGNORECASE)
_QUOTA = re.compile(r"over ?quota|quota exceeded|mailbox (?:is )?full|insufficient storage", re.IGNORECASE)
# A delay some servers state in words: "please retry in 60 seconds", "try again after 5 minutes".
_STATED_DELAY = re.compile(r"(?:in|after)\s+(\d+)\s*(s|sec|secs|seconds?|m|min|mins|minutes?)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    action: str  # RECONNECT | RETRY_LATER | STOP_RUN | SKIP
    reason: str  # stable report code: "throttled", "deferred", "over-quota", "too-large", "refused"
    code: int | None  # the basic reply code, None when the text has none
    status: str | None  # the enhanced status code ("5.3.4"), when given
    delay: float | None = None  # seconds the server asked for, when it said so


def parse_reply(reply: bytes | str) -> tuple[int | None, str | None]:
    """The basic code and the first enhanced status code of a reply, on the wire
    (``552-5.3.4 ...\\r\\n552 5.3.4 ...``) or as smtplib joins it (``552 5.3.4 ...\\n5.3.4 ...``)."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    m = _CODE.match(text)
    code = int(m.group(1)) if m else None
    s = _STATUS.search(text, m.end() if m else 0)
    status = ".".join(s.groups()) if s and (code is None or s.group(1) == str(code)[0]) else None
    return code, status


def stated_delay(text: str) -> float | None:
    m = _STATED_DELAY.search(text)
    if not m:
        return None
    return float(m.group(1)) * (60 if m.group(2).lower().startswith("m") else 1)


def classify_smtp(reply: bytes | str) -> Verdict:
    """What to do about a refused delivery (see the module docstring)."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    code, status = parse_reply(text)
    subject = status.split(".", 1)[1] if status else None  # "2.2" of "4.2.2"

    def verdict(action: str, reason: str, delay: float | None = None) -> Verdict:
        return Verdict(action, reason, code, status, delay)

    if code == 421:
        return verdict(RECONNECT, "throttled", stated_delay(text))
    if subject == "2.2" or (subject is None and code in (452, 552) and _QUOTA.search(text)):
        return verdict(STOP_RUN, "over-quota")
    if code is not None and 400 <= code < 500:
        return verdict(RETRY_LATER, "deferred", stated_delay(text))
    if subject in ("3.4", "2.3") or (subject is None and _TOO_LARGE.search(text)):
        return verdict(SKIP, "too-large")
    return verdict(SKIP, "refused")


# POP3 login ------------------------------------------------------------------------------------

TEMPORARY_LOGIN_CODES = ("LOGIN-DELAY", "IN-USE", "SYS/TEMP")
MAX_LOGIN_WAIT = 60.0  # seconds: a longer advertised LOGIN-DELAY ends the run (exit 5) instead


def pop3_response_code(reply: bytes | str) -> str | None:
    """``-ERR [LOGIN-DELAY] ...`` → "LOGIN-DELAY" (RFC 2449 §8: the bracket right after -ERR)."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    m = re.match(r"\s*-ERR\s+\[([A-Z0-9/-]+)\]", text, re.IGNORECASE)
    return m.group(1).upper() if m else None


def temporary_login_code(reply: bytes | str) -> str | None:
    """The response code of a refused login that means "later, not never", else None."""
    code = pop3_response_code(reply)
    return code if code in TEMPORARY_LOGIN_CODES else None


def login_delay_of(caps: dict[str, list[str]]) -> float | None:
    """Seconds of the CAPA line ``LOGIN-DELAY 900`` (RFC 2449 §6.8), when advertised."""
    args = caps.get("LOGIN-DELAY") or []
    # isascii: "²".isdigit() is true, but float() refuses it
    return float(args[0]) if args and args[0].isascii() and args[0].isdigit() else None


def login_retry_delay(code: str, advertised: float | None, attempt: int) -> float | None:
    """Seconds to wait before logging in again (attempts count from 0), or None: give up.
    LOGIN-DELAY: the advertised delay once, when it is at most ``MAX_LOGIN_WAIT`` (unknown or
    longer: give up, the user runs again later). IN-USE / SYS/TEMP: a short doubling backoff
    (a dropped session's lock goes when the server notices the close)."""
    if code == "LOGIN-DELAY":
        if attempt > 0 or advertised is None or advertised > MAX_LOGIN_WAIT:
            return None
        return advertised
    return backoff_delay(attempt)


# Login refusals explained -----------------------------------------------------------------------

_APP_PASSWORD = re.compile(r"application-specific password|app password|InvalidSecondFactor", re.IGNORECASE)
_BASIC_DISABLED = re.compile(
    r"basic auth|BasicAuthBlocked|authentication disabled|5\.7\.139|SmtpClientAuthentication is disabled", re.IGNORECASE
)


def auth_hint(text: str, *, oauth_offered: bool = False) -> str:
    """A parenthesised explanation to append to a refused login, or "" (a plain refusal).
    ``oauth_offered``: a password login was refused by a server that offers XOAUTH2 (Microsoft's
    POP3 says only "Logon failure: unknown user name or bad password." when basic auth is off)."""
    if _APP_PASSWORD.search(text):
        return " (the provider wants an application-specific password, not the account password)"
    if _BASIC_DISABLED.search(text) or oauth_offered:
        return (" (basic authentication is disabled for this account or tenant: use OAuth (?auth=xoauth2)"
                " or ask the admin)")
    return ""


# XOAUTH2 refusals ---------------------------------------------------------------------------------

OAUTH_REJECTED = "OAuth token expired or invalid"


def oauth_error(challenge: bytes | str) -> dict | None:
    """The provider's error report of a refused XOAUTH2 token: Gmail's continuation holds JSON
    such as ``{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`` (given
    base64-encoded or already decoded). None when it is no JSON object."""
    data = challenge.encode("ascii", "replace") if isinstance(challenge, str) else challenge
    data = data.strip()
    if not data.startswith(b"{"):
        try:
            data = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return None
    try:
        value = json.loads(data.decode("utf-8", "replace"))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def oauth_refusal(text: str, error: dict | None = None) -> str:
    """The explanation to append to a refused XOAUTH2 login: ``text`` is the server's reply,
    ``error`` its decoded report. Only the report's fields are quoted (never a token)."""
    said = ", ".join(f"{k} {error[k]}" for k in ("status", "schemes", "scope") if k in (error or {}))
    said = f"; the provider reports {said}" if said else ""
    return (f"{text} ({OAUTH_REJECTED}{said}: put a fresh access token where the secret comes from; "
            "it is re-read at every connect)")
