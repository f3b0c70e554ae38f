"""Is a refusal temporary, and how long to wait before trying again? Pure: reply text in, delay out.

Providers throttle in their own words: M365 `NO Request is throttled. Suggested Backoff Time:
299609 milliseconds`, Gmail's `[THROTTLED]` at the end of the text, Yahoo `NO [LIMIT] UID FETCH
Rate limit hit.`, `[UNAVAILABLE]` / `[SERVERBUG]` (RFC 5530). A suggested time is honoured (up to
``MAX_SUGGESTED``); otherwise the wait doubles from 50 ms like Dovecot's imapc (up to 16 s).
"""

from __future__ import annotations

import re

MAX_ATTEMPTS = 5
MAX_SUGGESTED = 300.0  # seconds; a longer suggestion is still honoured up to this
FIRST_DELAY, MAX_DELAY = 0.05, 16.0

# A number of more than 12 digits is "wait the longest": int() of thousands of digits raises and
# past 308 the division overflows a float.
_SUGGESTED = re.compile(r"Suggested Backoff Time: (\d+) milliseconds", re.IGNORECASE)
_TEMPORARY = re.compile(
    r"\[THROTTLED\]|throttl|\[LIMIT\]|\[UNAVAILABLE\]|\[SERVERBUG\]|rate limit|try again later", re.IGNORECASE
)


def retry_delay(text: str, attempt: int) -> float | None:
    """Seconds to wait before attempt ``attempt + 1`` (attempts count from 0), or None when the
    refusal is not temporary or the attempts are used up."""
    if attempt + 1 >= MAX_ATTEMPTS:
        return None
    m = _SUGGESTED.search(text)
    if m:
        digits = m.group(1).lstrip("0") or "0"
        return MAX_SUGGESTED if len(digits) > 12 else min(int(digits) / 1000.0, MAX_SUGGESTED)
    if _TEMPORARY.search(text):
        return backoff_delay(attempt)
    return None


def backoff_delay(attempt: int) -> float | None:
    """The doubling wait before attempt ``attempt + 1`` when the server names no time, or None
    when the attempts are used up."""
    if attempt + 1 >= MAX_ATTEMPTS:
        return None
    return min(FIRST_DELAY * 2**attempt, MAX_DELAY)


DEFER_ROUNDS = 3  # retry-later rounds within one run (greylisting, 4xx) before a message is reported deferred
DEFER_FIRST = 0.5  # seconds before the first round; doubles (0.5, 1, 2)
DEFER_MAX = 30.0  # seconds: the longest single wait; a server asking for more is not waited for


def defer_delay(round_: int, stated: float | None = None) -> float | None:
    """Seconds to wait before retry-later round ``round_`` (from 0), or None: report the messages
    deferred and leave them on the source for a later run. A delay the server stated is honoured
    when it is at most ``DEFER_MAX`` (greylisting usually asks for minutes: that is a later run)."""
    if round_ >= DEFER_ROUNDS:
        return None
    if stated is not None:
        return stated if stated <= DEFER_MAX else None
    return DEFER_FIRST * 2**round_
