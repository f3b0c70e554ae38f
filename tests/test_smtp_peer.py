"""swaks, a real SMTP client, delivering into the store through SimulatorWorld.start_smtp."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from simulators.launcher import SimulatorWorld
from simulators.smtp import strip_received
from tests.test_smtp_server import inbox, profile_with, store  # noqa: F401

pytestmark = pytest.mark.peer


@pytest.fixture
def swaks():
    path = shutil.which("swaks")
    if path is None:
        pytest.skip("swaks is not installed (apt-get install swaks)")
    return path


@pytest.fixture
def swaks_tls(swaks):
    # swaks does STARTTLS through Perl's Net::SSLeay, a separate Debian package.
    if subprocess.run(["perl", "-MNet::SSLeay", "-e1"], capture_output=True).returncode != 0:
        pytest.skip("swaks --tls needs Net::SSLeay (apt-get install libnet-ssleay-perl)")
    return swaks


def run_swaks(swaks, handle, *extra: str) -> subprocess.CompletedProcess:
    command = [swaks, "--server", f"{handle.host}:{handle.port}", "--from", "a@example.org",
               "--to", "alice@example.net", "--header", "Subject: s", "--helo", "swaks.test", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


def test_swaks_plain(swaks, store):
    with SimulatorWorld(store, profile_with()) as world:
        result = run_swaks(swaks, world.start_smtp())
    assert result.returncode == 0, result.stdout + result.stderr
    [item] = inbox(store)
    assert item.raw.startswith(b"Received: from swaks.test ([127.0.0.1])\r\n\tby mx.quirkmail.test (quirkmail) with ESMTP id ")
    sent = strip_received(item.raw)
    assert sent.startswith(b"Date: ") and b"\r\nTo: alice@example.net\r\n" in sent and b"\r\nSubject: s\r\n" in sent


def test_swaks_starttls_verified_with_auth(swaks_tls, store):
    with SimulatorWorld(store, profile_with(auth_require_tls=True)) as world:
        handle = world.start_smtp()
        result = run_swaks(swaks_tls, handle, "--tls", "--tls-verify", "--tls-ca-path", str(world.cafile),
                           "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "secret")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "235 2.7.0 Authentication successful" in result.stdout
    assert b" with ESMTPSA id " in inbox(store)[0].raw


def test_swaks_auth_login_refused(swaks, store):
    with SimulatorWorld(store, profile_with()) as world:
        result = run_swaks(swaks, world.start_smtp(), "--auth", "LOGIN", "--auth-user", "alice",
                           "--auth-password", "wrong")
    assert result.returncode != 0
    assert "535 5.7.8 Error: authentication failed: authentication failure" in result.stdout
    assert inbox(store) == []


def test_swaks_unknown_recipient(swaks, store):
    with SimulatorWorld(store, profile_with()) as world:
        handle = world.start_smtp()
        result = subprocess.run(
            [swaks, "--server", f"{handle.host}:{handle.port}", "--from", "a@example.org", "--to", "nobody@example.net"],
            capture_output=True, text=True, timeout=30,
        )
    assert result.returncode != 0
    assert "550 5.1.1 <nobody@example.net>: Recipient address rejected" in result.stdout
