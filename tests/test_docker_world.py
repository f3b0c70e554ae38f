"""The Docker world end to end: engine ensured, image built (or found up to date), docker/compose.yaml
brought up through the path `quirkmail serve --docker` takes, then our migrator copies from the
containerised simulators into the containerised Dovecot and Radicale, and our verifier judges it.

The first run on a machine builds the base (debootstrap, about a minute) and the image (wheelhouse
and docker build, about a minute); later runs reuse both. Without an engine that can be started
here the tests skip with the precise reason — and in CI (where scripts/install-peers.sh installs
docker.io and debootstrap) a skipped peer test fails, as intended.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import imapclient
import pytest
import requests
import vobject

from migrator.engine import MigrationOptions, migrate
from migrator.urls import Endpoint, Secret, ServerURL
from scenarios.docker_world.__main__ import main as docker_world_main
from scenarios.docker_world.engine import ensure_engine
from scenarios.docker_world.errors import EngineUnavailable
from scenarios.docker_world.image import REPO_ROOT
from scenarios.docker_world.secret_files import SecretDir
from scenarios.docker_world.world import remove_world, world_ids
from scenarios.docker_world.serve import WorldRequest, endpoint_lines, open_world, simulator_cafile
from scenarios.pim_compare import compare, read_dav
from scenarios.peers.radicale import MKCOL_ADDRESSBOOK_BODY
from scenarios.pytest_fixtures import verify_migration
from scenarios.snapshot import snapshot_imap
from scenarios.verify_pim import expected_records
from simulators.fixtures import FixtureSpec, populate
from simulators.profiles import load_profile
from simulators.store import Store

# One worker runs them all: the module fixture builds the image once, the other worker goes on with the rest.
pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.xdist_group("docker")]

SPEC = FixtureSpec(seed=7, messages=40, folders=6, bad_dates=2, odd_flags=2, contacts=4, events=3)
FIXTURE = ",".join(f"{k}={v}" for k, v in SPEC.model_dump(exclude_defaults=True).items())  # serve's --fixture
USER = "user"


@pytest.fixture(scope="module")
def expected():
    """The containerised mailbox made again here: the same spec and profile give the same bytes."""
    account = Store().add_account(USER, "unused")
    populate(account, SPEC, load_profile("generic"))
    return account


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    try:
        client = ensure_engine()
    except EngineUnavailable as exc:
        pytest.skip(f"needs a Docker engine: {exc}")
    request = WorldRequest(password=secrets.token_urlsafe(12), dest_password=secrets.token_urlsafe(12),
                           fixture=FIXTURE, user=USER, dest_user=USER)
    started = time.monotonic()
    with open_world(request, client=client, log=lambda text: None) as running:
        running.up_seconds = time.monotonic() - started
        running.cafile = simulator_cafile(running, tmp_path_factory.mktemp("docker") / "ca.pem")
        running.request = request
        running.secret_files = [Path(m["Source"]) for c in _containers(running) for m in c.attrs["Mounts"]]
        yield running
    assert not client.containers.list(all=True, filters={"label": f"quirkmail.project={running.project_id}"})
    assert running.secret_files and not any(f.exists() for f in running.secret_files)  # removed with the world


def _containers(world) -> list:
    return world.client.containers.list(all=True, filters={"label": f"quirkmail.project={world.project_id}"})


def _endpoint(world, service: str, port: int, scheme: str, password: str, cafile=None) -> Endpoint:
    return Endpoint(ServerURL.parse(f"{scheme}://{USER}@127.0.0.1:{world.port(service, port)}"), Secret(password),
                    cafile=cafile)


def _source(world) -> Endpoint:  # the simulators' IMAP front, over STARTTLS with their CA
    return _endpoint(world, "world", 143, "imap", world.request.password, world.cafile)


def _dovecot(world) -> Endpoint:
    return _endpoint(world, "dovecot", 143, "imap", world.request.dest_password)


def test_every_service_is_printed_with_its_published_port(world):
    lines = endpoint_lines(world, {"QUIRKMAIL_USER": USER, "DOVECOT_USER": USER})
    assert [line.split()[:2] for line in lines] == [
        ["world", "imap:"], ["world", "pop3:"], ["world", "smtp:"], ["world", "ews:"],
        ["dovecot", "imap:"], ["dovecot", "pop3:"], ["dovecot", "lmtp:"], ["radicale", "dav:"],
    ]
    assert lines[0].split()[2] == f"imap://{USER}@127.0.0.1:{world.port('world', 143)}"
    assert len({p.port for p in world.published}) == 8  # eight distinct free host ports


def test_imap_migration_from_the_simulators_into_dovecot_is_identical(world, expected, tmp_path):
    options = MigrationOptions(state_path=tmp_path / "state.sqlite", connections=2)
    report = migrate(_source(world), _dovecot(world), options)
    total = sum(len(f.messages) for f in expected.folders.values())
    assert total == 40 + 2 + 2  # messages, bad dates, odd flags
    assert (report.copied, report.skipped_count, report.failed, report.exit_code) == (total, 0, 0, 0)
    assert {f.source: f.copied for f in report.folders if f.source_count} == {
        "/".join(path): len(folder.messages) for path, folder in expected.folders.items() if folder.messages
    }
    check = verify_migration(_source(world), _dovecot(world), options=options)
    check.assert_identical()  # bytes, every flag, INTERNALDATE instants
    # The instants are the fixture's, made here without a clock: not the container's, not the run's.
    dest_inbox = snapshot_imap(_dovecot(world)).folders["INBOX"].messages
    assert sorted(m.internaldate.timestamp() for m in dest_inbox) == \
        sorted(m.internaldate.timestamp() for m in expected.folders[("INBOX",)].messages)
    again = migrate(_source(world), _dovecot(world), options)
    assert (again.copied, again.exit_code) == (0, 0)  # a re-run copies nothing


def test_radicale_keeps_a_vcard_put_through_its_published_port(world):
    base = f"http://127.0.0.1:{world.port('radicale', 5232)}/{USER}/scratch/"
    auth = (USER, "any")  # the compose file's Radicale runs with --auth-type=none
    made = requests.request("MKCOL", base, data=MKCOL_ADDRESSBOOK_BODY.format(name="scratch"), auth=auth, timeout=10)
    assert made.status_code == 201, made.text
    card = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:docker-1\r\nFN:Zoë Dockér\r\nN:Dockér;Zoë;;;\r\n" \
           "EMAIL;TYPE=INTERNET:zoe@example.org\r\nEND:VCARD\r\n"
    put = requests.put(base + "docker-1.vcf", data=card.encode(), auth=auth, timeout=10,
                       headers={"Content-Type": "text/vcard; charset=utf-8"})
    assert put.status_code == 201, put.text
    got = requests.get(base + "docker-1.vcf", auth=auth, timeout=10)
    assert got.status_code == 200
    parsed = vobject.readOne(got.content.decode("utf-8"))
    assert (parsed.uid.value, parsed.fn.value, parsed.email.value) == ("docker-1", "Zoë Dockér", "zoe@example.org")
    again = requests.put(base + "docker-2.vcf", data=card.encode(), auth=auth, timeout=10,
                         headers={"Content-Type": "text/vcard; charset=utf-8"})
    assert again.status_code == 409  # Radicale's answer to a second item with the same UID


def test_contacts_and_events_over_ews_into_radicale(world, expected, tmp_path):
    source = _endpoint(world, "world", 8080, "ews+http", world.request.password)
    pim = _endpoint(world, "radicale", 5232, "dav+http", "any")
    options = MigrationOptions(state_path=tmp_path / "pim.sqlite", items=["contacts", "calendars"])
    report = migrate(source, _dovecot(world), options, pim_dest=pim)
    assert report.exit_code == 0, report
    dav = [r for r in read_dav(f"dav+http://{USER}@127.0.0.1:{world.port('radicale', 5232)}/", "any")
           if not r.folder.endswith("scratch")]
    # The items as the scenario verifier expects them in CardDAV/CalDAV (collections, the engine's UIDs).
    wanted = expected_records(expected, load_profile("generic"), options, dav=True)
    assert len(wanted) == 4 + 3
    result = compare(wanted, dav, ignore=["contact.photo"])  # the EWS simulator does not render contacts:Photo
    assert result.ok, result.summary()
    assert result.dest_counts == {("contact", "contacts"): 4, ("event", "calendar"): 3}


class _Output:
    """A process's output lines, read by a thread (readline alone could block past a deadline)."""

    def __init__(self, process: subprocess.Popen):
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=lambda: [self.lines.put(x.rstrip("\n")) for x in process.stdout], daemon=True)
        self.reader.start()

    def until(self, marker: str, timeout: float) -> list[str]:
        seen, deadline = [], time.monotonic() + timeout
        while not seen or marker not in seen[-1]:
            try:
                seen.append(self.lines.get(timeout=max(0.1, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"no {marker!r} within {timeout} s; output so far: {seen}") from None
        return seen

    def rest(self) -> list[str]:  # after the process ended: the reader ends with its output
        self.reader.join(10)
        return list(self.lines.queue)


def test_serve_docker_prints_the_world_and_sigterm_removes_it(world):
    """The CLI itself (world is only there so the image is built once): real output, real cleanup."""
    account = Store().add_account(USER, "unused")
    populate(account, FixtureSpec(seed=2, messages=5), load_profile("generic"))
    inbox = account.folders[("INBOX",)]
    assert inbox.messages
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "QM_DOCKER_PW": secrets.token_urlsafe(9)}
    process = subprocess.Popen(
        [sys.executable, "-m", "scenarios", "serve", "--docker", "--profile", "generic", "--fixture", "seed=2,messages=5",
         "--quirk", "app-password-required", "--password-env", "QM_DOCKER_PW"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO_ROOT,
    )
    output = _Output(process)
    try:
        lines = output.until("Ctrl-C stops", timeout=90)
        # Build progress comes first when another checkout on this engine replaced the image meanwhile.
        start = next((i for i, line in enumerate(lines) if line.startswith("profile generic: docker world ")), None)
        assert start is not None, lines
        lines = lines[start:]
        project = lines[0].split()[-1]
        assert lines[0] == f"profile generic: docker world {project}"
        imap_url = next(line.split()[2] for line in lines if line.startswith("world imap:"))
        port = int(imap_url.rsplit(":", 1)[1])
        cafile = Path(next(line.split(": ", 1)[1] for line in lines if line.startswith("cafile: ")))
        assert cafile.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
        with imapclient.IMAPClient("127.0.0.1", port, ssl=False, timeout=10) as client:
            client.login("user", env["QM_DOCKER_PW"])
            assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == len(inbox.messages)
        with imapclient.IMAPClient("127.0.0.1", port, ssl=False, timeout=10) as client:  # the quirk got in
            with pytest.raises(imapclient.exceptions.LoginError) as refused:
                client.login("user", "a normal password")
        assert str(refused.value) == ("b'[ALERT] Application-specific password required: "
                                      "https://support.google.com/accounts/answer/185833 (Failure)'")
        assert env["QM_DOCKER_PW"] not in "\n".join(lines)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    rest = output.rest()
    assert process.returncode == 0, rest
    assert rest == ["stopping"]
    assert not cafile.exists()  # the local copy goes with the world
    assert not world.client.containers.list(all=True, filters={"label": f"quirkmail.project={project}"})


def test_no_password_is_in_a_containers_environment_or_inspect_json(world):
    passwords = (world.request.password, world.request.dest_password)
    containers = _containers(world)
    assert sorted(c.labels["quirkmail.service"] for c in containers) == ["dovecot", "radicale", "world"]
    for container in containers:
        env = container.attrs["Config"]["Env"]
        inspected = json.dumps(world.client.api.inspect_container(container.id))
        assert not [p for p in passwords if p in inspected or any(p in e for e in env)], container.name
    # The secrets are 0600 files mounted read-only where the entrypoints read them.
    mounts = {m["Destination"]: m for c in containers for m in c.attrs["Mounts"]}
    assert sorted(mounts) == ["/run/secrets/dovecot_password", "/run/secrets/quirkmail_password"]
    assert all(not m["RW"] and stat.S_IMODE(os.stat(m["Source"]).st_mode) == 0o600 for m in mounts.values())


def test_down_removes_the_named_world_only(world, capsys):
    """Two stand-in worlds (created, never started): `down ID` removes one, leaves the other and this module's."""
    ids = [f"quirkmail-test{secrets.token_hex(3)}" for _ in range(2)]
    left_behind = SecretDir({"quirkmail_password": "pw"})  # as a killed serve --docker leaves it
    for project_id in ids:
        world.client.containers.create(
            "quirkmail:local", entrypoint=["true"], name=f"{project_id}-world",
            labels={"quirkmail.project": project_id, "quirkmail.service": "world"},
            volumes={str(left_behind.path / "quirkmail_password"): {"bind": "/run/secrets/quirkmail_password", "mode": "ro"}}
            if project_id == ids[0] else None)
    try:
        assert docker_world_main(["down"]) == 0
        listed = capsys.readouterr().out
        assert f"{ids[0]}: {ids[0]}-world\n" in listed and f"{ids[1]}: {ids[1]}-world\n" in listed
        assert docker_world_main(["down", ids[0]]) == 0
        assert capsys.readouterr().out.startswith(f"removed {ids[0]}-world\n")
        remaining = world_ids(world.client)
        assert ids[0] not in remaining and remaining[ids[1]] == [f"{ids[1]}-world"]
        assert world.project_id in remaining  # the running world is untouched
        assert not left_behind.path.exists()
        assert all(f.exists() for f in world.secret_files)
        assert docker_world_main(["down", ids[0]]) == 2  # gone already: named as such
        assert f"no container of world {ids[0]}" in capsys.readouterr().err
    finally:
        remove_world(world.client, ids[1])
        left_behind.remove()
