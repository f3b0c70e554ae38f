"""TLS certificates are verified by default, for every front and both TLS styles: the simulator's
own CA (``world.cafile``, SAN IP:127.0.0.1 + DNS:localhost) makes it work, another CA fails with a
typed ``TlsFailure`` naming the server and the cause, ``verify=no`` works and is reported."""

from __future__ import annotations

import argparse

import pytest

from migrator.cli import add_migrate_arguments, endpoint_from_args
from migrator.engine import MigrationOptions, migrate
from migrator.engine import test_connection as probe
from migrator.errors import TlsFailure, UsageError
from migrator.urls import Endpoint, Secret, ServerURL
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import Store

PASSWORD = "tls-pw-1"


@pytest.fixture(scope="module")
def worlds():
    """Two worlds with different certificates: ``other.cafile`` is the wrong CA for ``world``."""
    store = Store()
    account = store.add_account("tina", PASSWORD)
    for n in range(3):
        account.append(("INBOX",), f"Subject: t{n}\r\nMessage-ID: <t{n}@x>\r\n\r\nbody\r\n".encode())
    store.add_account("dora", PASSWORD)
    elsewhere = Store()
    elsewhere.add_account("dora", PASSWORD)
    with SimulatorWorld(store, load_profile("generic")) as world, SimulatorWorld(elsewhere, load_profile("generic")) as other:
        yield world, other


def ep(url: str, cafile=None) -> Endpoint:
    return Endpoint(ServerURL.parse(url), Secret(PASSWORD), cafile=cafile)


FRONTS = {  # name → (start the front, the URL user, probe role)
    "imaps": (lambda w: w.start_imap(implicit_tls=True), "tina", "source"),
    "imap+starttls": (lambda w: w.start_imap(), "tina", "source"),
    "pop3s": (lambda w: w.start_pop3(implicit_tls=True), "tina", "source"),
    "pop3+stls": (lambda w: w.start_pop3(), "tina", "source"),
    "smtp+starttls": (lambda w: w.start_smtp(), "dora", "destination"),
}


@pytest.mark.parametrize("front", sorted(FRONTS))
def test_right_ca_works_wrong_ca_fails_typed_verify_no_works(worlds, front):
    world, other = worlds
    start, user, role = FRONTS[front]
    handle = start(world)
    assert handle.host == "127.0.0.1"  # simulators bind loopback by default
    url = handle.url(user)
    assert probe(ep(url, world.cafile), role=role).tls in ("implicit", "starttls", "stls", True)
    with pytest.raises(TlsFailure) as wrong:
        probe(ep(url, other.cafile), role=role)
    text = str(wrong.value)
    assert f"127.0.0.1:{handle.port}" in text and "certificate verify failed" in text, text
    assert wrong.value.exit_code == 3
    with pytest.raises(TlsFailure):  # no extra CA: the system store does not know the simulator
        probe(ep(url), role=role)
    assert probe(ep(url + "?verify=no"), role=role).tls in ("implicit", "starttls", "stls", True)


def test_ews_over_https_verifies_against_the_world_ca(worlds):
    world, other = worlds
    url = world.start_ews(tls=True).url("tina")
    assert probe(ep(url, world.cafile), role="source").inbox_messages == 3
    with pytest.raises(TlsFailure) as wrong:
        probe(ep(url, other.cafile), role="source")
    assert "127.0.0.1" in str(wrong.value) and "certificate" in str(wrong.value).lower()


def test_ca_in_the_url_and_unverified_runs_are_reported(worlds, tmp_path):
    world, other = worlds
    src = world.start_imap(implicit_tls=True).url("tina")
    dst = other.start_imap(implicit_tls=True).url("dora")
    report = migrate(ep(f"{src}?ca={world.cafile}"), ep(f"{dst}?verify=no"),
                     MigrationOptions(state_path=tmp_path / "s.sqlite"))
    assert report.copied == 3 and report.exit_code == 0
    assert report.tls_unverified == [f"destination {dst}"]
    assert any("verification was OFF" in n and dst in n for n in report.notes)
    assert '"tls_unverified"' in report.model_dump_json()


def test_url_and_cli_options(monkeypatch):
    u = ServerURL.parse("imaps://a@h?ca=/etc/x.pem&verify=no")
    assert (u.ca, u.tls_verify) == ("/etc/x.pem", False)
    assert ServerURL.parse("imaps://a@h").tls_verify is True  # the default
    assert ServerURL.parse("imaps://a@h?tls_verify=no").tls_verify is False  # the older spelling
    with pytest.raises(UsageError, match="ca= needs"):
        ServerURL.parse("imaps://a@h?ca=")
    with pytest.raises(UsageError, match="CA file /nonexistent.pem does not exist"):
        probe(ep("imaps://a@127.0.0.1:1?ca=/nonexistent.pem"), role="source")  # before any connection
    parser = argparse.ArgumentParser()
    add_migrate_arguments(parser)
    args = parser.parse_args(["--from", "imaps://a@h", "--to", "imap://b@k", "--insecure",
                              "--from-password-env", "QM_TLS_PW", "--to-password-env", "QM_TLS_PW"])
    monkeypatch.setenv("QM_TLS_PW", "x")
    assert endpoint_from_args(args, "source").url.tls_verify is False
    assert endpoint_from_args(args, "dest").tls_unverified
    args = parser.parse_args(["--from", "imaps://a@h", "--to", "imap://b@k", "--ca-file", "/tmp"])
    assert args.cafile is not None
