"""The subset of Compose that docker/compose.yaml uses, read into container specs (pure: text in, values out).

    project = parse_compose(text, env={"QUIRKMAIL_SECRETS": "/tmp/…"}, file=Path("docker/compose.yaml"))
    project.services["world"].ports      # (PortSpec("127.0.0.1", None, 143), …)
    run_kwargs(project.services["world"], project_id="quirkmail-3f2a")   # for DockerClient.containers.run

Understood per service: ``image``, ``build`` (``context``, ``dockerfile``, ``args``), ``entrypoint``,
``command``, ``environment``, ``ports``, ``labels``, ``secrets`` (short form: names); at the top
``services``, ``secrets`` (``file:`` only) and ``x-*`` extension fields (with YAML anchors and ``<<``
merges). Anything else is refused by name, so nobody believes a
``volumes:`` or ``depends_on:`` was honoured. Variables are interpolated as Compose does:
``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?message}``, ``${VAR?message}``
and ``$$`` for a dollar sign.

Ports are published on the loopback only: a port without a host address, or with another one,
is refused (the simulators are test servers, and nothing else on the network should reach them).
A service's secret is its file bind-mounted read-only at ``/run/secrets/NAME``, as Compose does
outside a swarm: the value never enters the container's environment (``docker inspect`` shows the
host path only), so the entrypoints read ``*_FILE`` variables, as official images do.

The ``quirkmail.ready`` label lists ``CONTAINER_PORT=KIND`` pairs (readiness.KINDS): the greeting
each published port must give before the service is up.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scenarios.docker_world.errors import ComposeError
from scenarios.docker_world.readiness import KINDS

SERVICE_KEYS = frozenset({"image", "build", "entrypoint", "command", "environment", "ports", "labels", "secrets"})
SECRETS_DIR = "/run/secrets"  # where Compose mounts a service's secrets
READY_LABEL = "quirkmail.ready"
PROJECT_LABEL = "quirkmail.project"  # every container of one world carries its project id
SERVICE_LABEL = "quirkmail.service"

_VARIABLE = re.compile(
    r"\$(?:(?P<dollar>\$)|(?P<plain>[A-Za-z_][A-Za-z0-9_]*)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})"
)


@dataclass(frozen=True)
class PortSpec:
    host_ip: str
    host_port: int | None  # None: any free port
    container_port: int
    protocol: str = "tcp"

    @property
    def key(self) -> str:  # the Docker API's name of the container port
        return f"{self.container_port}/{self.protocol}"


@dataclass(frozen=True)
class ReadyCheck:
    container_port: int
    kind: str  # a readiness.KINDS key


@dataclass(frozen=True)
class SecretMount:
    name: str
    file: Path  # on the host: a 0600 file the engine bind-mounts

    @property
    def target(self) -> str:
        return f"{SECRETS_DIR}/{self.name}"


@dataclass(frozen=True)
class BuildSpec:
    context: Path
    dockerfile: str = "Dockerfile"
    args: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    image: str
    build: BuildSpec | None = None
    entrypoint: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[PortSpec, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    ready: tuple[ReadyCheck, ...] = ()
    secrets: tuple[SecretMount, ...] = ()


@dataclass(frozen=True)
class ComposeProject:
    file: Path
    services: Mapping[str, ServiceSpec]

    def images(self) -> dict[str, BuildSpec | None]:
        """Each image the services use, with how to build it (None: it must exist already)."""
        out: dict[str, BuildSpec | None] = {}
        for service in self.services.values():
            out[service.image] = out.get(service.image) or service.build
        return out


def load_compose(path: Path, env: Mapping[str, str]) -> ComposeProject:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ComposeError(path, "", f"cannot read: {exc.strerror or exc}") from None
    return parse_compose(text, env, file=path)


def parse_compose(text: str, env: Mapping[str, str], *, file: Path = Path("compose.yaml")) -> ComposeProject:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ComposeError(file, "", f"not YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict) or not data["services"]:
        raise ComposeError(file, "services", "a mapping of at least one service is required")
    unknown = sorted(k for k in data if k not in ("services", "secrets", "version") and not str(k).startswith("x-"))
    if unknown:
        raise ComposeError(file, "", f"unsupported top-level key(s) {', '.join(map(str, unknown))}")
    secrets = _secrets(_Reader(file, "secrets", env), data.get("secrets") or {})
    services = {}
    for name, body in data["services"].items():
        services[str(name)] = _service(_Reader(file, f"services.{name}", env), str(name), body, secrets)
    return ComposeProject(file, services)


class _Reader:
    """Where we are in the file (for error texts) and the variables to interpolate."""

    def __init__(self, file: Path, where: str, env: Mapping[str, str]):
        self.file, self.where, self.env = file, where, env

    def error(self, key: str, problem: str) -> ComposeError:
        return ComposeError(self.file, f"{self.where}.{key}" if key else self.where, problem)

    def text(self, key: str, value: Any) -> str:
        if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
            raise self.error(key, f"expected a string or number, got {type(value).__name__}")
        try:
            return interpolate(str(value), self.env)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def words(self, key: str, value: Any) -> tuple[str, ...]:
        if isinstance(value, list):
            return tuple(self.text(f"{key}[{i}]", v) for i, v in enumerate(value))
        try:
            return tuple(shlex.split(self.text(key, value)))
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def mapping(self, key: str, value: Any) -> dict[str, str]:
        """A Compose mapping, given as a mapping or as a list of KEY=VALUE (a bare KEY: from env)."""
        if isinstance(value, dict):
            items = list(value.items())
        elif isinstance(value, list):
            items = [(str(v).partition("=")[0], str(v).partition("=")[2] if "=" in str(v) else None) for v in value]
        else:
            raise self.error(key, "expected a mapping or a list of KEY=VALUE")
        out = {}
        for k, v in items:
            if v is None:  # Compose: the variable's value from the environment, left out when unset
                if str(k) in self.env:
                    out[str(k)] = self.env[str(k)]
                continue
            out[str(k)] = self.text(f"{key}.{k}", v)
        return out


def _secrets(r: _Reader, value: Any) -> dict[str, SecretMount]:
    """The top-level ``secrets:``: NAME: {file: PATH} (relative to the compose file)."""
    if not isinstance(value, dict):
        raise r.error("", "expected a mapping of secret names")
    out = {}
    for name, body in value.items():
        if not isinstance(body, dict) or set(body) != {"file"}:
            raise r.error(str(name), "only the file: form is supported (NAME: {file: PATH})")
        path = Path(r.text(f"{name}.file", body["file"]))
        out[str(name)] = SecretMount(str(name), path if path.is_absolute() else r.file.parent / path)
    return out


def _service(r: _Reader, name: str, body: Any, secrets: Mapping[str, SecretMount]) -> ServiceSpec:
    if not isinstance(body, dict):
        raise r.error("", "a service must be a mapping")
    unknown = sorted(str(k) for k in body if k not in SERVICE_KEYS and not str(k).startswith("x-"))
    if unknown:
        raise r.error("", f"unsupported key(s) {', '.join(unknown)} (understood: {', '.join(sorted(SERVICE_KEYS))})")
    if "image" not in body:
        raise r.error("image", "required (the tag to run, and to build when build: is given)")
    ports = tuple(_port(r, f"ports[{i}]", r.text(f"ports[{i}]", p)) for i, p in enumerate(body.get("ports") or []))
    labels = r.mapping("labels", body["labels"]) if "labels" in body else {}
    return ServiceSpec(
        name=name,
        image=r.text("image", body["image"]),
        build=_build(r, body["build"]) if "build" in body else None,
        entrypoint=r.words("entrypoint", body["entrypoint"]) if "entrypoint" in body else None,
        command=r.words("command", body["command"]) if "command" in body else None,
        environment=r.mapping("environment", body["environment"]) if "environment" in body else {},
        ports=ports,
        labels=labels,
        ready=_ready(r, labels.get(READY_LABEL, ""), ports),
        secrets=_service_secrets(r, body.get("secrets") or [], secrets),
    )


def _service_secrets(r: _Reader, value: Any, secrets: Mapping[str, SecretMount]) -> tuple[SecretMount, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise r.error("secrets", "expected a list of secret names (the short form)")
    missing = [v for v in value if v not in secrets]
    if missing:
        raise r.error("secrets", f"no top-level secret {', '.join(missing)}")
    return tuple(secrets[v] for v in value)


def _build(r: _Reader, value: Any) -> BuildSpec:
    if not isinstance(value, dict):
        value = {"context": value}
    context = Path(r.text("build.context", value.get("context", ".")))
    return BuildSpec(
        context=context if context.is_absolute() else (r.file.parent / context),
        dockerfile=r.text("build.dockerfile", value.get("dockerfile", "Dockerfile")),
        args=r.mapping("build.args", value["args"]) if "args" in value else {},
    )


def _port(r: _Reader, key: str, text: str) -> PortSpec:
    """``IP:HOST:CONTAINER[/proto]`` with a loopback IP; HOST may be empty (any free port)."""
    spec, _, protocol = text.partition("/")
    parts = spec.rsplit(":", 2)
    if len(parts) != 3:
        raise r.error(key, f"{text!r}: give the host address, 127.0.0.1:HOST_PORT:CONTAINER_PORT (HOST_PORT may be empty)")
    ip, host_port, container_port = parts
    try:
        loopback = ipaddress.ip_address(ip.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise r.error(key, f"{text!r}: publish on a loopback address only (127.0.0.1), not {ip!r}")
    if protocol not in ("", "tcp"):
        raise r.error(key, f"{text!r}: only tcp ports are supported")
    return PortSpec(ip.strip("[]"), _number(r, key, host_port, allow_empty=True), _number(r, key, container_port))


def _number(r: _Reader, key: str, text: str, *, allow_empty: bool = False) -> int | None:
    if allow_empty and text == "":
        return None
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise r.error(key, f"port {text!r} is not a number from 1 to 65535")
    return int(text)


def _ready(r: _Reader, text: str, ports: tuple[PortSpec, ...]) -> tuple[ReadyCheck, ...]:
    published = {p.container_port for p in ports}
    checks = []
    for pair in text.split():
        port, _, kind = pair.partition("=")
        if kind not in KINDS:
            raise r.error(f"labels.{READY_LABEL}", f"{pair!r}: the kind must be one of {', '.join(sorted(KINDS))}")
        number = _number(r, f"labels.{READY_LABEL}", port)
        if number not in published:
            raise r.error(f"labels.{READY_LABEL}", f"{pair!r}: container port {port} is not published in ports")
        checks.append(ReadyCheck(number, kind))
    return tuple(checks)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution; ValueError names a required variable that is missing."""

    def substitute(m: re.Match) -> str:
        if m["dollar"]:
            return "$"
        name = m["plain"] or m["name"]
        op, arg = m["op"], m["arg"]
        value = env.get(name)
        unset_or_empty = value is None or (value == "" and op is not None and op.startswith(":"))
        if op and op.endswith("-"):
            return arg if unset_or_empty else value
        if op and op.endswith("?"):
            if unset_or_empty:
                raise ValueError(f"variable {name} is required: {arg or 'not set'}")
            return value
        return value or ""

    return _VARIABLE.sub(substitute, text)


def run_kwargs(service: ServiceSpec, project_id: str) -> dict[str, Any]:
    """Keyword arguments of ``DockerClient.containers.run`` for one service of one world."""
    return {
        "image": service.image,
        "name": f"{project_id}-{service.name}",
        "entrypoint": list(service.entrypoint) if service.entrypoint is not None else None,
        "command": list(service.command) if service.command is not None else None,
        "environment": dict(service.environment),
        "ports": {p.key: (p.host_ip, p.host_port) for p in service.ports},
        "labels": {**service.labels, PROJECT_LABEL: project_id, SERVICE_LABEL: service.name},
        "volumes": {str(s.file): {"bind": s.target, "mode": "ro"} for s in service.secrets},
        "detach": True,
        "init": True,  # docker-init as PID 1 passes SIGTERM on: a stop takes no 10 s grace period
    }
