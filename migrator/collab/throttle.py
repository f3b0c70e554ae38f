"""Is an EWS failure temporary, and how long to wait? Pure: exception in, delay out.

exchangelib runs with its ``FailFast`` policy (its own retry loop would sleep where we cannot see
or bound it), so every overload surfaces here as an exception:
- ``ErrorServerBusy`` with ``back_off`` (seconds, from BackOffMilliseconds in MessageXml): obeyed.
- the disguised forms (ews-throttle-disguised): HTTP 503 and the generic-error-page 302
  (``ErrorInternalServerTransientError``), 500 with a SOAP body carrying a busy code,
  ``ErrorTooManyObjectsOpened``, ``ErrorExceededConnectionCount``, ``ErrorTimeoutExpired``,
  a closed connection, and HTTP 401 — but 401 only after the same credentials already worked
  (before that it is a wrong password and retrying would lock the account).
Without a suggested time the wait doubles from 0.5 s up to 30 s.
"""

from __future__ import annotations

from exchangelib import errors as ews_errors

MAX_ATTEMPTS = 8
MAX_SUGGESTED = 300.0  # seconds
FIRST_DELAY, MAX_DELAY = 0.5, 30.0

_BUSY = (
    ews_errors.ErrorServerBusy,
    ews_errors.ErrorInternalServerTransientError,
    ews_errors.ErrorTooManyObjectsOpened,
    ews_errors.ErrorExceededConnectionCount,
    ews_errors.ErrorTimeoutExpired,
    ews_errors.ErrorInternalServerError,
)
# Transport failures whose text says overload (exchangelib words them this way).
_BUSY_WORDS = ("503", "502", "504", "closed connection", "genericerrorpage", "timed out", "Connection aborted")


def retry_delay(exc: BaseException, attempt: int, *, authenticated_before: bool) -> float | None:
    """Seconds to wait before attempt ``attempt + 1`` (from 0), or None: not temporary / give up."""
    if attempt + 1 >= MAX_ATTEMPTS or not is_throttling(exc, authenticated_before=authenticated_before):
        return None
    back_off = getattr(exc, "back_off", None)
    # exchangelib passes BackOffMilliseconds/1000 through as sent: a negative or NaN one is no
    # suggestion (a negative sleep raises ValueError), an infinite one is the longest wait.
    if isinstance(back_off, int | float) and back_off > 0:
        return min(float(back_off), MAX_SUGGESTED)
    return min(FIRST_DELAY * 2**attempt, MAX_DELAY)


def is_throttling(exc: BaseException, *, authenticated_before: bool) -> bool:
    if isinstance(exc, _BUSY):
        return True
    if isinstance(exc, ews_errors.UnauthorizedError):
        return authenticated_before and "locked out" not in str(exc)
    if isinstance(exc, ews_errors.RedirectError):
        return "genericerrorpage" in str(exc).lower()
    if isinstance(exc, ews_errors.TransportError) and not isinstance(exc, ews_errors.ResponseMessageError):
        return any(w.lower() in str(exc).lower() for w in _BUSY_WORDS)
    return False
