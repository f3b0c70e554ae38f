"""No password or token in any transcript: IMAP (LOGIN, XOAUTH2 with Gmail's error continuation),
POP3 (AUTH PLAIN, USER/PASS, APOP, XOAUTH2), SMTP AUTH and EWS (HTTP Basic) migrations recorded,
right and wrong secrets; every file scanned for the secrets as text and inside any base64 run."""

from __future__ import annotations

import base64
import binascii
import re

import pytest

from migrator.engine import MigrationOptions, migrate
from migrator.errors import MigratorError
from migrator.recording import recorded
from migrator.urls import Endpoint, Secret, ServerURL
from simulators.fixtures import FixtureSpec, populate
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.quirks import QuirkSpec
from simulators.store import Store
from transcripts import format as tf
from transcripts.tap import Recorder

PW = "Rec-S3cret-Ibis-6021"
WRONG = "Rec-Wr0ng-Moth-1187"
SECRETS = (PW.encode(), WRONG.encode())
_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/]{12,}={0,2}")


def leaks(data: bytes) -> list[str]:
    """Secrets in the bytes, as they are or base64-encoded at any alignment."""
    found = [s.decode() for s in SECRETS if s in data]
    for run in _BASE64_RUN.findall(data):
        for start in range(4):  # a run cut out of a longer text may start mid-quantum
            chunk = run[start:]
            chunk = chunk[: len(chunk) - len(chunk) % 4]
            try:
                decoded = base64.b64decode(chunk)
            except (binascii.Error, ValueError):
                continue
            found += [f"base64 of {s.decode()}" for s in SECRETS if s in decoded]
    return found


def _profile(name: str, *quirks: str):
    profile = load_profile(name)
    return profile.with_quirks([QuirkSpec.parse(q) for q in quirks]) if quirks else profile


def _pop3_profile(**pop3):
    generic = load_profile("generic")
    caps = [c if not c.startswith("SASL") else c + " XOAUTH2" for c in generic.pop3.capabilities_before_auth]
    return generic.model_copy(update={"pop3": generic.pop3.model_copy(update={"capabilities_before_auth": caps, **pop3})})


@pytest.mark.slow
def test_recorded_migrations_hold_no_secret(tmp_path):
    recorder = Recorder(tmp_path / "rec")
    outcomes = {}
    dest_store = Store()
    for n in range(12):
        dest_store.add_account(f"d{n}", PW)
    mail = Store()
    populate(mail.add_account("ivy", PW), FixtureSpec(seed=5, messages=4, folders=1), load_profile("generic"))
    exchange = Store()
    populate(exchange.add_account("eve", PW), FixtureSpec(seed=6, messages=3, folders=1), load_profile("exchange"))
    gmail = Store()
    gmail.add_account("gus", PW).append(("INBOX",), b"Subject: g\r\n\r\nbody\r\n")
    worlds = {
        "generic": SimulatorWorld(mail, _pop3_profile()),
        "apop": SimulatorWorld(mail, _pop3_profile(apop=True)),
        "gmail": SimulatorWorld(gmail, _profile("gmail", "xoauth2-error-continuation")),
        "exchange": SimulatorWorld(exchange, load_profile("exchange")),
        "dest": SimulatorWorld(dest_store, load_profile("generic")),
    }
    try:
        dest_imap, dest_smtp = worlds["dest"].start_imap(), worlds["dest"].start_smtp()
        generic_imap, generic_pop3 = worlds["generic"].start_imap(), worlds["generic"].start_pop3()
        gmail_imap, exchange_ews = worlds["gmail"].start_imap(), worlds["exchange"].start_ews()
        smtp = f"smtp://d8@{dest_smtp.host}:{dest_smtp.port}"
        cases = [  # name, source world, source URL, source secret, destination URL, destination secret
            ("imap-login", "generic", generic_imap.url("ivy"), PW, dest_imap.url("d0"), PW),
            ("imap-wrong-dest", "generic", generic_imap.url("ivy"), PW, dest_imap.url("d1"), WRONG),
            ("imap-wrong-source", "generic", generic_imap.url("ivy"), WRONG, dest_imap.url("d1"), PW),
            ("gmail-xoauth2", "gmail", gmail_imap.url("gus") + "?auth=xoauth2", PW, dest_imap.url("d2"), PW),
            ("gmail-xoauth2-stale", "gmail", gmail_imap.url("gus") + "?auth=xoauth2", WRONG, dest_imap.url("d3"), PW),
            ("pop3-plain", "generic", generic_pop3.url("ivy"), PW, dest_imap.url("d4"), PW),
            ("pop3-user", "generic", generic_pop3.url("ivy") + "?auth=user", PW, dest_imap.url("d5"), PW),
            ("pop3-xoauth2", "generic", generic_pop3.url("ivy") + "?auth=xoauth2", PW, dest_imap.url("d6"), PW),
            ("pop3-apop", "apop", worlds["apop"].start_pop3().url("ivy"), PW, dest_imap.url("d7"), PW),
            ("pop3-smtp-auth", "generic", generic_pop3.url("ivy"), PW, smtp, PW),
            ("ews-basic", "exchange", exchange_ews.url("eve"), PW, dest_imap.url("d9"), PW),
            ("ews-wrong", "exchange", exchange_ews.url("eve"), WRONG, dest_imap.url("d10"), PW),
        ]
        for i, (name, world, src, src_pw, dst, dst_pw) in enumerate(cases):
            source = recorded(Endpoint(ServerURL.parse(src), Secret(src_pw), cafile=worlds[world].cafile),
                              recorder, "source")
            dest = recorded(Endpoint(ServerURL.parse(dst), Secret(dst_pw), cafile=worlds["dest"].cafile),
                            recorder, "destination")
            try:
                report = migrate(source, dest, MigrationOptions(state_path=tmp_path / f"{i}.sqlite", items=["mail"]))
                outcomes[name] = report.exit_code
            except MigratorError as exc:
                outcomes[name] = int(exc.exit_code)
    finally:
        recorder.close()
        for world in worlds.values():
            world.stop()
    assert outcomes == {
        "imap-login": 0, "imap-wrong-dest": 4, "imap-wrong-source": 4, "gmail-xoauth2": 0, "gmail-xoauth2-stale": 4,
        "pop3-plain": 0, "pop3-user": 0, "pop3-xoauth2": 0, "pop3-apop": 0, "pop3-smtp-auth": 0,
        "ews-basic": 0, "ews-wrong": 4,
    }, outcomes
    files = recorder.paths
    protocols = {tf.read(p).header.protocol.value for p in files}
    assert protocols == {"imap", "pop3", "smtp", "http"}
    for path in files:
        data = path.read_bytes()
        assert not leaks(data), f"{path.name}: {leaks(data)}"
    # every kind of login was seen and masked, not merely absent
    clients = b"".join(tf.read(p).sent_by(tf.Sender.CLIENT) for p in files)
    for shown in (rb" LOGIN ivy \"\*{20}\"", rb" AUTHENTICATE XOAUTH2\r\n\*{20,}\r\n", rb"PASS \*{20}\r\n",
                  rb"APOP ivy \*{32}\r\n", rb"AUTH PLAIN \*{20,}\r\n", rb"Authorization: Basic \*{20,}\r\n"):
        assert re.search(shown, clients), shown
    assert sum(tf.read(p).header.redacted for p in files) >= len(cases)

