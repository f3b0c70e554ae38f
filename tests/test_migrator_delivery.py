"""Refusals classified (``migrator.replies``: reply bytes in, verdict out) and what the POP3 flow
does with them against the simulators: SMTP 421 / 4xx / 452 / 552 / 535, POP3 [LOGIN-DELAY] and
[IN-USE]. Pauses are waited with a fake ``sleep`` that moves the servers' clocks instead."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from twisted.internet import reactor

from migrator.backoff import DEFER_ROUNDS, backoff_delay, defer_delay
from migrator.engine import MigrationOptions
from migrator.errors import AuthenticationFailed, LoginDeferred
from migrator.pop3_flow import migrate_pop3
from migrator.pop3_targets import ImapTarget
from migrator.replies import (
    RECONNECT, RETRY_LATER, SKIP, STOP_RUN, auth_hint, classify_smtp, login_delay_of, login_retry_delay, parse_reply,
    pop3_response_code, temporary_login_code,
)
from migrator.sources.pop3 import Pop3Source
from migrator.urls import Endpoint, Secret, ServerURL
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.quirks import QuirkSpec
from simulators.store import INBOX
from tests.test_migrator_pop3 import PASSWORD, make_store, message

GMAIL_552_WIRE = (b"552-5.3.4 Your message exceeded Google's message size limits. Please visit\r\n"
                  b"552-5.3.4 https://support.google.com/mail/?p=MaxSizeError to view our size\r\n"
                  b"552 5.3.4 guidelines. - gsmtp")


# Pure: reply in, verdict out ---------------------------------------------------------------------


@pytest.mark.parametrize("reply,action,reason,code,status", [
    (b"421 4.7.0 Try again later, closing connection.", RECONNECT, "throttled", 421, "4.7.0"),
    (b"421 Service not available", RECONNECT, "throttled", 421, None),
    (b"451 4.7.1 Greylisting in action, please come back later", RETRY_LATER, "deferred", 451, "4.7.1"),
    (b"450 4.2.0 Mailbox busy", RETRY_LATER, "deferred", 450, "4.2.0"),
    (b"452 4.3.1 Insufficient system storage", RETRY_LATER, "deferred", 452, "4.3.1"),
    (GMAIL_552_WIRE, SKIP, "too-large", 552, "5.3.4"),
    # smtplib's form: the code once, the continuation lines' texts joined by "\n"
    (b"552 5.3.4 Your message exceeded Google's message size limits.\n5.3.4 guidelines. - gsmtp",
     SKIP, "too-large", 552, "5.3.4"),
    (b"552 5.2.3 Message length exceeds administrative limit", SKIP, "too-large", 552, "5.2.3"),
    (b"552 Message size exceeds fixed maximum message size", SKIP, "too-large", 552, None),
    (b"452-4.2.2 The email account that you tried to reach is over quota. Please direct\r\n"
     b"452 4.2.2  https://support.google.com/mail/?p=OverQuotaTemp - gsmtp", STOP_RUN, "over-quota", 452, "4.2.2"),
    (b"552 5.2.2 Mailbox full", STOP_RUN, "over-quota", 552, "5.2.2"),
    (b"452 Mailbox over quota", STOP_RUN, "over-quota", 452, None),
    (b"550 5.1.1 The email account that you tried to reach does not exist.", SKIP, "refused", 550, "5.1.1"),
    (b"554 Transaction failed (see 4.2.2)", SKIP, "refused", 554, None),  # a status of another class is text
    (b"", SKIP, "refused", None, None),
])
def test_smtp_replies_are_classified(reply, action, reason, code, status):
    verdict = classify_smtp(reply)
    assert (verdict.action, verdict.reason, verdict.code, verdict.status) == (action, reason, code, status)
    assert classify_smtp(reply.decode()) == verdict  # str (AppendResult.text) and bytes alike


def jittered(waits: list[float], nominal: list[float]) -> bool:
    """The doubling waits, each drawn from [nominal / 2, nominal] (``backoff.jittered``)."""
    return len(waits) == len(nominal) and all(n / 2 <= w <= n for w, n in zip(waits, nominal))


def test_imap_target_refusals_use_the_same_verdicts():
    verdict = ImapTarget.verdict
    assert (verdict("NO [OVERQUOTA] Quota exceeded").action, verdict("NO [OVERQUOTA] x").reason) == (STOP_RUN, "over-quota")
    assert (verdict("NO [TOOBIG] Message too large").action, verdict("NO [TOOBIG] x").reason) == (SKIP, "too-large")
    throttled = verdict("NO Request is throttled. Suggested Backoff Time: 2000 milliseconds")
    assert (throttled.action, throttled.reason, throttled.delay) == (RETRY_LATER, "deferred", 2.0)
    assert verdict("NO [CANNOT] Invalid message").action == SKIP


def test_a_stated_delay_is_read():
    assert classify_smtp("450 4.7.1 Please retry in 60 seconds").delay == 60.0
    assert classify_smtp("451 Try again after 5 minutes").delay == 300.0
    assert classify_smtp("421 4.7.0 Try again later, closing connection.").delay is None
    assert parse_reply("250 2.0.0 OK") == (250, "2.0.0")


def test_pop3_login_codes():
    assert pop3_response_code(b"-ERR [LOGIN-DELAY] Attempt to log in within the minimum login delay interval") == "LOGIN-DELAY"
    assert temporary_login_code("-ERR [IN-USE] Mailbox is locked by another POP3 session.") == "IN-USE"
    assert temporary_login_code("-ERR [SYS/TEMP] try later") == "SYS/TEMP"
    assert temporary_login_code("-ERR [AUTH] Authentication failed.") is None
    assert temporary_login_code("-ERR no [IN-USE] here") is None  # the code comes right after -ERR
    assert login_delay_of({"LOGIN-DELAY": ["900"]}) == 900.0 and login_delay_of({"TOP": []}) is None


def test_login_retry_delay():
    assert login_retry_delay("LOGIN-DELAY", 30, 0) == 30  # short enough: waited once
    assert login_retry_delay("LOGIN-DELAY", 30, 1) is None  # refused again after waiting it out
    assert login_retry_delay("LOGIN-DELAY", 900, 0) is None  # a later run's business
    assert login_retry_delay("LOGIN-DELAY", None, 0) is None  # unknown delay: do not guess
    waits = [login_retry_delay("IN-USE", None, a) for a in range(6)]
    assert waits[4:] == [None, None]
    assert all(n / 2 <= w <= n for w, n in zip(waits, [0.05, 0.1, 0.2, 0.4]))  # jittered doubling


def test_backoff_and_defer_schedules():
    waits = [backoff_delay(a) for a in range(5)]
    assert waits[4] is None and all(n / 2 <= w <= n for w, n in zip(waits, [0.05, 0.1, 0.2, 0.4]))
    assert [defer_delay(r) for r in range(DEFER_ROUNDS + 1)] == [0.5, 1.0, 2.0, None]
    assert defer_delay(0, 20.0) == 20.0 and defer_delay(0, 300.0) is None


def test_auth_hint():
    tenant = ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. "
              "Visit https://aka.ms/smtp_auth_disabled for more information.")
    assert "basic authentication is disabled" in auth_hint(tenant) and "ask the admin" in auth_hint(tenant)
    assert "application-specific password" in auth_hint("534-5.7.9 Application-specific password required.")
    assert auth_hint("535 5.7.8 Username and Password not accepted.") == ""
    assert "OAuth" in auth_hint("-ERR Logon failure: unknown user name or bad password.", oauth_offered=True)


# Against the simulators ------------------------------------------------------------------------


class FakeTime:
    """``sleep`` for the flow: records the waits and moves the servers' clocks by them."""

    def __init__(self):
        self.offset, self.waits = 0.0, []
        self.on_sleep = None

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.offset += seconds
        if self.on_sleep is not None:
            self.on_sleep()

    def smtp_clock(self) -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=self.offset)


class _ShiftedReactorClock:
    def __init__(self, fake: FakeTime):
        self.fake = fake

    def seconds(self) -> float:
        return reactor.seconds() + self.fake.offset

    def callLater(self, *args, **kwargs):
        return reactor.callLater(*args, **kwargs)


def deliver(store, tmp_path, quirks, *, fake: FakeTime | None = None, dest_password="", run_twice=False, **options):
    fake = fake or FakeTime()
    options.setdefault("state_path", tmp_path / "state.sqlite")
    with SimulatorWorld(store, load_profile("generic").with_quirks(quirks)) as world:
        pop3, smtp = world.start_pop3(), world.start_smtp()
        world._smtp_servers[-1].handler.clock = fake.smtp_clock  # before any connection takes it
        world._factories[-1].clock = _ShiftedReactorClock(fake)
        src = Endpoint(ServerURL.parse(pop3.url("src")), Secret(PASSWORD), cafile=world.cafile)
        dst = Endpoint(ServerURL.parse(f"smtp://dst@{smtp.host}:{smtp.port}"), Secret(dest_password),
                       cafile=world.cafile)
        report = migrate_pop3(src, dst, MigrationOptions(**options), sleep=fake.sleep)
        if run_twice:
            report = migrate_pop3(src, dst, MigrationOptions(**options), sleep=fake.sleep)
        return report


def delivered(store) -> list[bytes]:
    return [m.raw for m in store.accounts["dst"].folders[INBOX].messages]


def source(store) -> list[bytes]:
    return [m.raw for m in store.accounts["src"].folders[INBOX].messages]


def each_once(store, msgs: list[bytes]) -> bool:
    got = delivered(store)
    return len(got) == len(msgs) and all(sum(d.endswith(raw) for d in got) == 1 for raw in msgs)


def test_421_reconnects_and_sends_the_same_message_again(tmp_path):
    msgs = [message(n) for n in range(1, 8)]
    store, fake = make_store(msgs), FakeTime()
    report = deliver(store, tmp_path, [QuirkSpec(name="smtp-throttle-421", params={"after": 3})], fake=fake,
                     pop3_delete=True)
    assert (report.exit_code, report.copied, report.skipped_count, report.pop3.destination_reconnects) == (0, 7, 0, 2)
    assert jittered(fake.waits, [0.05, 0.05])  # one pause per 421: each reconnect starts a fresh backoff
    assert each_once(store, msgs) and source(store) == []


def test_421_every_time_aborts_after_bounded_attempts_and_deletes_nothing(tmp_path):
    msgs = [message(n) for n in range(1, 4)]
    store, fake = make_store(msgs), FakeTime()
    report = deliver(store, tmp_path, [QuirkSpec(name="smtp-throttle-421", params={"after": 0})], fake=fake,
                     pop3_delete=True)
    assert report.exit_code == 5 and "closed the connection 5 times" in report.aborted
    assert jittered(fake.waits, [0.05, 0.1, 0.2, 0.4]) and report.pop3.deleted == 0
    assert delivered(store) == [] and source(store) == msgs


def test_greylisting_is_retried_after_a_pause_and_then_deleted(tmp_path):
    msgs = [message(n) for n in range(1, 6)]
    store, fake = make_store(msgs), FakeTime()
    report = deliver(store, tmp_path, [QuirkSpec(name="smtp-greylist-451", params={"delay_seconds": 1.2})],
                     fake=fake, pop3_delete=True)
    assert fake.waits == [0.5, 1.0]  # 0.5 s is still inside the greylist window, 1.5 s is not
    assert (report.exit_code, report.copied, report.skipped_count, report.pop3.deferred) == (0, 5, 0, 0)
    assert each_once(store, msgs) and source(store) == []
    assert len(report.date_fallbacks) == 5  # dated once each, not once per attempt
    assert any("5 message(s) temporarily refused" in n and "0 still deferred" in n for n in report.notes)


def test_greylisting_longer_than_the_run_is_reported_deferred_and_kept(tmp_path):
    msgs = [message(n) for n in range(1, 5)]
    store, fake = make_store(msgs), FakeTime()
    report = deliver(store, tmp_path, [QuirkSpec(name="smtp-greylist-451", params={"delay_seconds": 300})],
                     fake=fake, pop3_delete=True)
    assert fake.waits == [0.5, 1.0, 2.0]
    assert (report.exit_code, report.copied, report.pop3.deferred, report.pop3.deleted) == (1, 0, 4, 0)
    assert [s.reason for s in report.skipped] == ["deferred"] * 4 and "451 4.7.1" in report.skipped[0].detail
    assert not report.errors and delivered(store) == [] and source(store) == msgs


def test_552_too_big_is_skipped_too_large_and_kept(tmp_path):
    big = message(90, body="z" * 9000)
    msgs = [message(1), big, message(2)]
    store = make_store(msgs)
    report = deliver(store, tmp_path, [QuirkSpec(name="smtp-size-552", params={"bytes": 5000})], pop3_delete=True)
    assert [(s.reason, s.uid) for s in report.skipped] == [("too-large", 2)] and "5.3.4" in report.skipped[0].detail
    assert (report.exit_code, report.copied, report.pop3.deleted) == (1, 2, 2) and source(store) == [big]


def test_452_over_quota_stops_the_run_and_deletes_nothing(tmp_path):
    msgs = [message(n, body="q" * 900) for n in range(1, 9)]
    store = make_store(msgs)
    report = deliver(store, tmp_path, [QuirkSpec(name="smtp-quota-452", params={"bytes": 3000})],
                     pop3_delete=True, batch_size=3)
    assert report.exit_code == 5 and "over quota" in report.aborted and "452" in report.aborted
    assert [s.reason for s in report.skipped] == ["over-quota"]  # one, not a refusal per later message
    assert 0 < report.copied < 8 and len(delivered(store)) == report.copied
    assert source(store) == msgs and report.pop3.deleted == 0


def test_535_tenant_policy_is_explained(tmp_path):
    store = make_store([message(1)])
    with pytest.raises(AuthenticationFailed, match="basic authentication is disabled") as info:
        deliver(store, tmp_path, [QuirkSpec(name="smtp-auth-disabled-535")], dest_password="pw-dest")
    assert "5.7.139" in str(info.value) and "pw-dest" not in str(info.value) and info.value.exit_code == 4
    assert source(store) == [message(1)]


def test_login_delay_too_long_ends_the_second_run_as_deferred_not_refused(tmp_path):
    store = make_store([message(n) for n in range(1, 4)])
    with pytest.raises(LoginDeferred, match=r"LOGIN-DELAY.*every 900 s|every 900 s.*LOGIN-DELAY") as info:
        deliver(store, tmp_path, [QuirkSpec(name="pop3-login-delay", params={"seconds": 900})], run_twice=True)
    assert info.value.exit_code == 5 and info.value.code == "LOGIN-DELAY" and info.value.wait == 900
    assert "not a wrong password" in str(info.value) and len(delivered(store)) == 3


def test_short_login_delay_is_waited_out_on_reconnect(tmp_path):
    msgs = [message(n) for n in range(1, 7)]
    store, fake = make_store(msgs), FakeTime()
    quirks = [QuirkSpec(name="pop3-drop-mid-retr", params={"after_bytes": 60, "message": 5}),
              QuirkSpec(name="pop3-login-delay", params={"seconds": 20})]
    report = deliver(store, tmp_path, quirks, fake=fake, pop3_delete=True)
    assert fake.waits == [20.0] and report.pop3.reconnects == 1
    assert (report.exit_code, report.copied, report.pop3.deleted) == (0, 6, 6) and each_once(store, msgs)
    assert any("LOGIN-DELAY" in n for n in report.notes)


def test_in_use_lock_is_retried_until_the_other_session_goes(tmp_path):
    msgs = [message(n) for n in range(1, 4)]
    store, fake = make_store(msgs), FakeTime()
    profile = load_profile("generic").with_quirks([QuirkSpec(name="pop3-session-lock")])
    with SimulatorWorld(store, profile) as world:
        pop3, smtp = world.start_pop3(), world.start_smtp()
        src = Endpoint(ServerURL.parse(pop3.url("src")), Secret(PASSWORD), cafile=world.cafile)
        dst = Endpoint(ServerURL.parse(f"smtp://dst@{smtp.host}:{smtp.port}"), Secret(""), cafile=world.cafile)
        holder = Pop3Source(src)  # another client holds the maildrop lock
        released = []

        def release():  # the holder quits during the flow's first pause
            if not released:
                holder.quit()
                released.append(True)

        fake.on_sleep = release
        report = migrate_pop3(src, dst, MigrationOptions(state_path=tmp_path / "s.sqlite"), sleep=fake.sleep)
    assert len(fake.waits) >= 1 and jittered(fake.waits[:1], [0.05]) and report.exit_code == 0
    assert any("IN-USE" in n for n in report.notes) and each_once(store, msgs)


def test_in_use_lock_never_released_is_deferred_exit_5(tmp_path):
    store, fake = make_store([message(1)]), FakeTime()
    profile = load_profile("generic").with_quirks([QuirkSpec(name="pop3-session-lock")])
    with SimulatorWorld(store, profile) as world:
        pop3, smtp = world.start_pop3(), world.start_smtp()
        src = Endpoint(ServerURL.parse(pop3.url("src")), Secret(PASSWORD), cafile=world.cafile)
        dst = Endpoint(ServerURL.parse(f"smtp://dst@{smtp.host}:{smtp.port}"), Secret(""), cafile=world.cafile)
        holder = Pop3Source(src)
        try:
            with pytest.raises(LoginDeferred, match=r"IN-USE") as info:
                migrate_pop3(src, dst, MigrationOptions(state_path=tmp_path / "s.sqlite"), sleep=fake.sleep)
        finally:
            holder.abandon()
    assert info.value.exit_code == 5 and jittered(fake.waits, [0.05, 0.1, 0.2, 0.4])
    assert "another session holds the mailbox lock" in str(info.value) and delivered(store) == []
