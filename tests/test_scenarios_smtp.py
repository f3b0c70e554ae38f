"""The SMTP scenario library (scenarios/library/smtp/): POP3 → SMTP delivery under the providers'
SMTP quirks, and live SMTP traffic during an IMAP cut-over. Each scenario passes as written (or is
a recorded finding: it states the behaviour we want and the engine differs), and fails with a
precise sentence when the behaviour it guards is switched off.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.sinks.imap import AppendResult
from migrator.sinks.lmtp import DeliverySink
from migrator.state import State
from simulators.traffic import TrafficSpec, compose_live
from tests.test_scenarios_pop3 import damage, drop_quirk, engine_deletes_everything, run, variant

SMTP = Path(__file__).resolve().parents[1] / "scenarios" / "library" / "smtp"


@pytest.fixture
def dovecot_available():
    from scenarios.peers.dovecot import availability

    if availability():
        pytest.skip(availability())


def delivery_loses_one(monkeypatch) -> None:
    """Tamper: the second delivery is claimed as done but never sent."""
    original, calls = DeliverySink.deliver, []

    def deliver(self, raw):
        calls.append(raw)
        return AppendResult(True, None, "delivered") if len(calls) == 2 else original(self, raw)

    monkeypatch.setattr(DeliverySink, "deliver", deliver)


def test_every_smtp_scenario_passes(dovecot_available):
    failed = {}
    for path in sorted(SMTP.glob("*.yaml")):
        result = run(path)
        if not result.passed:
            failed[path.stem] = result.failures or result.error
    assert failed == {}


def test_delivery_fails_without_the_checkpoint(monkeypatch):
    monkeypatch.setattr(State, "pop3_done", lambda self: [])
    result = run(SMTP / "delivery-plain.yaml")
    assert "run 2 copied 10 messages, expected 0" in result.failures
    assert any(f.startswith("10 duplicated messages at the destination, expected 0") for f in result.failures)


def test_delivery_fails_when_a_message_is_claimed_but_not_delivered(monkeypatch):
    delivery_loses_one(monkeypatch)
    result = run(SMTP / "delivery-plain.yaml")
    assert result.failures[0].startswith("1 missing messages at the destination, expected 0 (INBOX: 1; e.g. uid 2 <")


@pytest.mark.parametrize("name", ["throttle-421", "greylist-451"])
def test_quirk_scenarios_pass_without_the_quirk_and_catch_a_lost_message(tmp_path, monkeypatch, name):
    path = variant(tmp_path, SMTP / f"{name}.yaml", drop_quirk(f"smtp-{name.split('-')[0]}"))
    assert run(path).passed
    delivery_loses_one(monkeypatch)
    result = run(path)
    assert any(f.startswith("1 missing messages at the destination, expected 0 (INBOX: 1;") for f in result.failures)


@pytest.mark.parametrize("name,quirk,sentence", [
    ("size-552", "smtp-size-552", "run 1 ended with exit code 0, expected 1"),
    ("quota-452", "smtp-quota-452", "run 1 ended with exit code 0, expected 5"),
    ("auth-disabled-535", "smtp-auth-disabled-535", "run 1 ended with exit code 0, expected 4"),
    ("auth-disabled-535-named", "smtp-auth-disabled-535", "run 1 ended with exit code 0, expected 4"),
    ("greylist-451-kept", "smtp-greylist-451", "run 1 ended with exit code 0, expected 1"),
])
def test_a_scenario_without_its_quirk_fails(tmp_path, name, quirk, sentence):
    result = run(variant(tmp_path, SMTP / f"{name}.yaml", drop_quirk(quirk)))
    assert sentence in result.failures, result.failures


def test_deferred_mail_deleted_from_the_source_fails(monkeypatch):
    engine_deletes_everything(monkeypatch)
    result = run(SMTP / "greylist-451-kept.yaml")
    assert "source folder 'INBOX' holds 0 messages after the migration, expected 5" in result.failures
    assert result.failures[0].startswith("the migration changed the source mailbox: 5 missing (INBOX: 5;")


def test_smtp_auth_refusal_quotes_the_reply():
    result = run(SMTP / "auth-disabled-535.yaml")
    assert result.passed and result.runs[0].exit_code == 4
    assert "535 5.7.139 Authentication unsuccessful" in result.runs[0].error


def test_imap_live_cutover_fails_when_a_live_message_is_lost(dovecot_available):
    live_id = compose_live(TrafficSpec(seed=362, messages=15), "alice@example.net")[5].message_id
    result = run(SMTP / "imap-live-cutover.yaml", after_migration=damage("delete", message_id=live_id))
    assert f"1 live messages lost at the destination, expected 0 (e.g. {live_id})" in result.failures
    assert result.failures[0].startswith("the destination is not identical to the source: 1 missing (INBOX: 1;")
