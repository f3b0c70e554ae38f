"""``quirkmail serve --docker``: docker/compose.yaml's world (simulators, Dovecot, Radicale) in containers.

    request = WorldRequest(profile="gmail", fixture="seed=3,messages=40", password=…, dest_password=…)
    with open_world(request) as world:         # engine ensured, images built if needed, greetings read
        world.port("world", 143)
        endpoint_lines(world, request)          # what serve prints

The test (tests/test_docker_world.py) and the CLI share this path. Passwords reach the containers
as the compose file's secrets: one private directory of 0600 files per world (secret_files.py),
mounted at /run/secrets/NAME and removed with the world: never in a container's environment, on
a command line or in a log.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from migrator.errors import UsageError
from scenarios.docker_world.compose import load_compose
from scenarios.docker_world.engine import ensure_engine
from scenarios.docker_world.errors import DockerWorldError
from scenarios.docker_world.image import REPO_ROOT
from scenarios.docker_world.secret_files import SECRETS_VARIABLE, SecretDir
from scenarios.docker_world.world import DockerWorld

COMPOSE_FILE = REPO_ROOT / "docker" / "compose.yaml"
SIMULATORS = "world"  # the compose service running `quirkmail serve`
USER_VARIABLES = {"world": "QUIRKMAIL_USER", "dovecot": "DOVECOT_USER"}  # whose user a service's URLs name
CAFILE_LINE = re.compile(r"^cafile: (\S+)$", re.M)
CAFILE_TIMEOUT = 10.0


@dataclass(frozen=True)
class WorldRequest:
    password: str
    dest_password: str
    profile: str = "generic"
    fixture: str | None = None  # "seed=3,messages=40" (serve's --fixture syntax); None: the compose default
    user: str = "user"
    dest_user: str = "user"
    services: tuple[str, ...] | None = None  # None: every service of the compose file
    serve_args: tuple[str, ...] = ()  # appended to the simulators' `serve` command: --quirk …, --fault …
    host_ports: Mapping[str, int] = dataclasses.field(default_factory=dict)  # {"QUIRKMAIL_IMAP_PORT": 1143}: fixed


def secret_values(request: WorldRequest) -> dict[str, str]:
    """docker/compose.yaml's secrets, by name (pure)."""
    return {"quirkmail_password": request.password, "dovecot_password": request.dest_password}


def compose_env(request: WorldRequest, base: Mapping[str, str]) -> dict[str, str]:
    """The variables docker/compose.yaml is interpolated with: the request over ``base`` (pure; no password)."""
    env = dict(base)
    env.update(
        QUIRKMAIL_PROFILE=request.profile, QUIRKMAIL_USER=request.user, DOVECOT_USER=request.dest_user,
    )
    if request.fixture is not None:
        env["QUIRKMAIL_FIXTURE"] = request.fixture
    env.update({name: str(port) for name, port in request.host_ports.items()})
    return env


def open_world(
    request: WorldRequest, *, compose_file: Path = COMPOSE_FILE, log: Callable[[str], None] = print, client=None
) -> DockerWorld:
    """A DockerWorld for the request (use it as a context manager: `with` brings it up and down;
    its down() also removes the world's secret files)."""
    secret_dir = SecretDir(secret_values(request))
    try:
        project = load_compose(compose_file, {**compose_env(request, os.environ), SECRETS_VARIABLE: str(secret_dir.path)})
        if request.serve_args:
            simulators = project.services[SIMULATORS]
            command = (*(simulators.command or ()), *request.serve_args)
            project = dataclasses.replace(
                project, services={**project.services, SIMULATORS: dataclasses.replace(simulators, command=command)}
            )
        return DockerWorld(project, client or ensure_engine(), services=request.services, log=log,
                           cleanup=secret_dir.remove)
    except BaseException:
        secret_dir.remove()
        raise


def endpoint_lines(world: DockerWorld, env: Mapping[str, str]) -> list[str]:
    """One line per published port with a readiness kind, as plain ``serve`` prints its fronts (pure)."""
    lines = []
    for p in world.published:
        if p.kind is None:
            continue
        user = env.get(USER_VARIABLES.get(p.service, ""), "") or env.get("QUIRKMAIL_USER", "user")
        lines.append(f"{p.service + ' ' + p.kind.split('+')[0] + ':':16} {p.kind}://{user}@{p.host}:{p.port}")
    return lines


def simulator_cafile(world: DockerWorld, target: Path, timeout: float = CAFILE_TIMEOUT) -> Path:
    """Copy the simulators' CA certificate (the path their serve printed) out of the container."""
    deadline = time.monotonic() + timeout
    while True:
        found = CAFILE_LINE.search(world.logs(SIMULATORS))
        if found:
            target.write_bytes(world.read_file(SIMULATORS, found.group(1)))
            return target
        if time.monotonic() > deadline:
            raise DockerWorldError(f"service {SIMULATORS!r} printed no cafile line within {timeout:.0f} s")
        time.sleep(0.2)


# Options of plain serve that the containerised world does not take (yet): refused by name.
UNSUPPORTED = {"fixture_file": "--fixture-file", "store_dir": "--store-dir", "implicit_tls": "--implicit-tls",
               "host": "--host"}
# serve's port options → the compose file's variables for the simulators' published host ports.
PORT_VARIABLES = {"port": "QUIRKMAIL_IMAP_PORT", "pop3_port": "QUIRKMAIL_POP3_PORT",
                  "smtp_port": "QUIRKMAIL_SMTP_PORT", "ews_port": "QUIRKMAIL_EWS_PORT"}


def check_arguments(args) -> None:
    given = [flag for attr, flag in UNSUPPORTED.items() if getattr(args, attr, None) not in (None, False, "127.0.0.1")]
    from scenarios.cli import FRONTS

    if args.fronts != ",".join(FRONTS):  # the compose file's world serves every front
        given.append("--fronts")
    if given:
        raise UsageError(f"serve --docker does not take {', '.join(given)}: the world is docker/compose.yaml")
    if Path(args.profile).suffix in (".yaml", ".yml") or os.sep in args.profile:
        raise UsageError(f"serve --docker takes a built-in profile name, not the file {args.profile!r} "
                         "(the image holds the built-in profiles only)")


def serve_args(args) -> tuple[str, ...]:
    """The quirks and faults given to serve --docker, for the simulators' own serve (validated already)."""
    return tuple(f"--quirk={q}" for q in args.quirk) + tuple(f"--fault={f}" for f in args.fault)


def serve_docker(args, password: str, password_note: str, *, wait: Callable[[str], None]) -> int:
    """The CLI: start the world, print its endpoints, ``wait`` (for Ctrl-C or SIGTERM), remove it."""
    import tempfile

    check_arguments(args)
    request = WorldRequest(password=password, dest_password=password, profile=args.profile,
                           fixture=args.fixture, user=args.user, dest_user=args.user, serve_args=serve_args(args),
                           host_ports={name: getattr(args, attr) for attr, name in PORT_VARIABLES.items() if getattr(args, attr)})
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a plain kill removes the containers too
    try:
        with open_world(request, log=lambda text: print(text, flush=True)) as world:
            env = compose_env(request, os.environ)
            print(f"profile {args.profile}: docker world {world.project_id}")
            for line in endpoint_lines(world, env):
                print(line)
            with tempfile.TemporaryDirectory(prefix="quirkmail-docker-") as local:
                print(f"cafile: {simulator_cafile(world, Path(local) / 'ca.pem')}")
                print(password_note)
                wait("Ctrl-C stops and removes the containers")
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
