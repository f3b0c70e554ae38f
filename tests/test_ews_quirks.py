"""EWS quirks as exchangelib (a real client) meets them; counts and shapes asserted on both sides."""

from __future__ import annotations

import logging

import pytest
from exchangelib import FaultTolerance
from exchangelib.errors import (
    ErrorExceededConnectionCount,
    ErrorInternalServerError,
    ErrorMimeContentConversionFailed,
    ErrorServerBusy,
    ErrorTimeoutExpired,
    UnauthorizedError,
)
from exchangelib.items import CalendarItem, Contact, Message, Task

from simulators.store import ItemKind, PimItem
from tests.test_ews_exchangelib import CONTACT, EVENT, NOTE, TASK, ews_account, mail, make_store


def fault_tolerant(account, max_wait: float = 10) -> None:
    """Retry quickly: exchangelib waits 10 s (RETRY_WAIT) or 60 s (DEFAULT_BACKOFF) by default."""
    account.protocol.RETRY_WAIT = 0.02
    account.protocol.retry_policy.DEFAULT_BACKOFF = 0.02


def test_nonmail_in_deleted_items_shows_every_kind_with_its_class():
    store = make_store(0)
    account = store.account("alice")
    trash = account.create_folder(("Deleted Items",), special_use="\\Trash")
    account.append(trash.path, mail(1))
    for kind, item_id, payload in ((ItemKind.CONTACT, "contact-1", CONTACT), (ItemKind.EVENT, "event-weekly", EVENT),
                                   (ItemKind.TASK, "task-1", TASK), (ItemKind.NOTE, "note-1", NOTE)):
        account.add_item(trash.path, PimItem(kind, item_id, payload))
    with ews_account(store) as plain:
        assert [type(i) for i in plain.trash.all()] == [Message]
        assert plain.trash.total_count == 1
    with ews_account(store, ["nonmail-in-deleted-items"]) as quirky:
        items = list(quirky.trash.all())
        assert [type(i) for i in items] == [Message, Contact, CalendarItem, Task, Message]
        assert items[-1].item_class == "IPM.StickyNote" and items[1].display_name == "Ada Lovelace"
        assert quirky.trash.total_count == 5


def backoffs(caplog) -> list[str]:
    """The back-offs exchangelib took, from its own debug log."""
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Got ErrorServerBusy")]


def test_server_busy_fault_carries_back_off_and_is_retried(caplog):
    store = make_store(3)
    with ews_account(store, ["ews-server-busy:after=0,times=1,backoff_ms=40"]) as account:
        with pytest.raises(ErrorServerBusy) as err:
            account.inbox.refresh()
        assert err.value.back_off == 0.04
        assert account.inbox.total_count == 3  # the next request goes through
    caplog.set_level(logging.DEBUG, logger="exchangelib.services.common")
    with ews_account(store, ["ews-server-busy:after=0,every=2,backoff_ms=20"],
                     retry_policy=FaultTolerance(max_wait=5)) as account:
        fault_tolerant(account)
        assert [m.subject for m in account.inbox.all().only("subject")] == ["message 0", "message 1", "message 2"]
    seen = backoffs(caplog)
    assert len(seen) >= 2 and all(m == "Got ErrorServerBusy (back off 0.02 seconds)" for m in seen)


@pytest.mark.parametrize(
    ("kind", "raised"),
    [
        ("401", UnauthorizedError),
        # exchangelib turns transient errors into ErrorServerBusy before giving up (fail fast).
        ("503", ErrorServerBusy),
        ("302", ErrorServerBusy),
        ("500", ErrorInternalServerError),
        ("ErrorTooManyObjectsOpened", ErrorServerBusy),
        ("ErrorExceededConnectionCount", ErrorExceededConnectionCount),
        ("ErrorTimeoutExpired", ErrorTimeoutExpired),
    ],
)
def test_disguised_throttling_as_a_fail_fast_client_sees_it(kind, raised):
    with ews_account(make_store(1), [f"ews-throttle-disguised:after=0,kinds={kind}"]) as account:
        with pytest.raises(raised):
            account.inbox.refresh()
        assert account.inbox.total_count == 1


def test_disguised_throttling_is_papered_over_by_fault_tolerance(caplog):
    # Not ErrorTimeoutExpired: exchangelib gives up on it once its session pool is down to one,
    # which the earlier refusals have already done.
    caplog.set_level(logging.DEBUG, logger="exchangelib.services.common")
    kinds = "401|503|302|ErrorTooManyObjectsOpened"
    with ews_account(make_store(2), [f"ews-throttle-disguised:after=1,times=5,kinds={kinds}"],
                     retry_policy=FaultTolerance(max_wait=5)) as account:
        fault_tolerant(account)
        assert account.inbox.total_count == 2
        assert [m.subject for m in account.inbox.all().only("subject")] == ["message 0", "message 1"]
    assert len(backoffs(caplog)) == 5


def _inbox_with(n: int):
    store = make_store(0)
    for i in range(n):
        store.account("alice").append(("INBOX",), mail(i))
    return store


def test_paging_stops_at_1000_items_like_m365():
    with ews_account(_inbox_with(1200), ["ews-paging-anomalies:mode=stop,limit=1000"]) as account:
        qs = account.inbox.all().only("subject")
        qs.page_size = 250
        subjects = [m.subject for m in qs]
    assert len(subjects) == 1000 and subjects[-1] == "message 999"


def test_paging_contradiction_ends_the_listing_early():
    with ews_account(_inbox_with(30), ["ews-paging-anomalies:mode=contradict,delta=7"]) as account:
        qs = account.inbox.all().only("subject")
        qs.page_size = 10
        assert len(list(qs)) == 10  # IncludesLastItemInRange=true on page one: the client stops


def test_paging_offset_drift_repeats_items():
    with ews_account(_inbox_with(30), ["ews-paging-anomalies:mode=drift,delta=3"]) as account:
        qs = account.inbox.all().only("subject")
        qs.page_size = 10
        subjects = [m.subject for m in qs]
    assert len(subjects) > 30 and len(set(subjects)) == 30


def test_mime_conversion_failed_per_item():
    store = make_store(0)
    for i in range(4):
        store.account("alice").append(("INBOX",), mail(i, "broken calendar reply" if i == 2 else None))
    with ews_account(store, ["ews-mime-conversion-failed:subject=broken"]) as account:
        ids = [(m.id, m.changekey) for m in account.inbox.all().only("id")]
        fetched = list(account.fetch(ids=ids, only_fields=["mime_content"]))
    assert [type(f).__name__ for f in fetched] == ["Message", "Message", "ErrorMimeContentConversionFailed", "Message"]
    assert isinstance(fetched[2], ErrorMimeContentConversionFailed)
    assert fetched[0].mime_content == mail(0)
