"""DockerWorld: the services of a compose file as running containers, ready, and removed at the end.

    project = load_compose(COMPOSE_FILE, env)
    with DockerWorld(project, ensure_engine()) as world:       # builds what is missing, waits for greetings
        world.port("world", 143)                                # the host port published for container port 143
        world.read_file("world", "/tmp/…/ca.pem")

Every container carries the label ``quirkmail.project=<id>`` (one id per world), so ``down()``
removes exactly this world's containers, also the ones whose start failed half way;
``remove_world`` does the same for ``python3 -m scenarios.docker_world down ID`` (None: every world).
"""

from __future__ import annotations

import io
import secrets
import shutil
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from scenarios.docker_world.compose import PROJECT_LABEL, SECRETS_DIR, ComposeProject, run_kwargs
from scenarios.docker_world.errors import DockerWorldError, ServiceNotReady
from scenarios.docker_world.image import ensure_images
from scenarios.docker_world.readiness import Target, wait_ready
from scenarios.docker_world.secret_files import PREFIX

READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Published:
    service: str
    container_port: int
    host: str
    port: int
    kind: str | None  # the readiness kind, when the compose file names one


class DockerWorld:
    def __init__(
        self,
        project: ComposeProject,
        client,
        *,
        services: Iterable[str] | None = None,
        ready_timeout: float = READY_TIMEOUT,
        log: Callable[[str], None] = print,
        cleanup: Callable[[], None] | None = None,  # after down() removed the containers (their secret files)
    ):
        self.project = project
        self.client = client
        self.project_id = f"quirkmail-{secrets.token_hex(3)}"
        names = list(services) if services is not None else list(project.services)
        unknown = sorted(set(names) - set(project.services))
        if unknown:
            raise DockerWorldError(f"{project.file}: no service {', '.join(unknown)} (has {', '.join(project.services)})")
        self.services = {name: project.services[name] for name in names}
        self.ready_timeout = ready_timeout
        self.log = log
        self.cleanup = cleanup
        self._containers: dict[str, object] = {}
        self.published: list[Published] = []

    def __enter__(self) -> DockerWorld:
        return self.up()

    def __exit__(self, *exc_info: object) -> None:
        self.down()

    def up(self) -> DockerWorld:
        """Build what is missing, start every service, wait until each port gave its greeting."""
        selected = ComposeProject(self.project.file, self.services)
        ensure_images(self.client, selected, log=self.log)
        try:
            for name, service in self.services.items():
                self._containers[name] = self._run(name, run_kwargs(service, self.project_id))
            self.published = [p for name in self.services for p in self._published(name)]
            self._wait_ready()
        except BaseException:
            self.down()
            raise
        return self

    def _run(self, name: str, kwargs: dict):
        import docker.errors

        try:
            return self.client.containers.run(**kwargs)
        except docker.errors.ImageNotFound:
            raise DockerWorldError(f"service {name!r}: image {kwargs['image']} not found and no build: for it") from None
        except docker.errors.APIError as exc:
            raise DockerWorldError(f"service {name!r}: cannot start: {exc.explanation or exc}") from None

    def _published(self, name: str) -> list[Published]:
        container = self._containers[name]
        container.reload()
        ports = container.attrs["NetworkSettings"]["Ports"] or {}
        kinds = {c.container_port: c.kind for c in self.services[name].ready}
        out = []
        for spec in self.services[name].ports:
            bindings = ports.get(spec.key) or []
            if not bindings:
                raise ServiceNotReady(name, f"container port {spec.key} was not published", self.logs(name))
            out.append(Published(name, spec.container_port, spec.host_ip, int(bindings[0]["HostPort"]), kinds.get(spec.container_port)))
        return out

    def _wait_ready(self) -> None:
        targets = [Target(p.service, p.kind, p.host, p.port) for p in self.published if p.kind]
        try:
            wait_ready(targets, self.ready_timeout, alive=self._exited)
        except RuntimeError as exc:
            service, why = exc.args
            raise ServiceNotReady(service, why, self.logs(service)) from None
        except TimeoutError as exc:
            service = next(t.service for t in targets if str(t) in str(exc))
            raise ServiceNotReady(service, f"no greeting within {self.ready_timeout:.0f} s: {exc}", self.logs(service)) from None

    def _exited(self, name: str) -> str | None:
        container = self._containers[name]
        container.reload()
        if container.status in ("exited", "dead"):
            return f"its container {container.status} with status {container.attrs['State']['ExitCode']}"
        return None

    def port(self, service: str, container_port: int) -> int:
        for p in self.published:
            if p.service == service and p.container_port == container_port:
                return p.port
        raise KeyError(f"{service}:{container_port} is not published")

    def logs(self, service: str) -> str:
        container = self._containers.get(service)
        if container is None:
            return ""
        try:
            return container.logs().decode("utf-8", "replace")
        except Exception:  # the container may be gone already; logs are a courtesy in an error text
            return ""

    def read_file(self, service: str, path: str) -> bytes:
        """One file from a running container (e.g. the simulators' CA certificate)."""
        import docker.errors

        try:
            stream, _ = self._containers[service].get_archive(path)
        except docker.errors.APIError as exc:
            raise DockerWorldError(f"service {service!r}: cannot read {path}: {exc.explanation or exc}") from None
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.next()
            extracted = tar.extractfile(member) if member is not None else None
            if extracted is None:
                raise DockerWorldError(f"service {service!r}: {path} is not a file")
            return extracted.read()

    def down(self) -> None:
        """Remove this world's containers (by label: also those started before a failure)."""
        import docker.errors

        self._containers.clear()
        try:
            remove_world(self.client, self.project_id)
        except docker.errors.DockerException as exc:
            self.log(f"cannot list containers of {self.project_id} to remove them: {exc}")
        finally:
            if self.cleanup is not None:
                self.cleanup()


def world_ids(client) -> dict[str, list[str]]:
    """The project id of every quirkmail world on the engine, with its containers' names."""
    worlds: dict[str, list[str]] = {}
    for container in client.containers.list(all=True, filters={"label": PROJECT_LABEL}):
        worlds.setdefault(container.labels.get(PROJECT_LABEL, ""), []).append(container.name)
    return worlds


def remove_world(client, project_id: str | None) -> list[str]:
    """Remove the containers of world ``project_id`` (None: of every quirkmail world); their names.
    Their secret directories go too: a killed serve --docker could not remove its own."""
    import docker.errors

    label = PROJECT_LABEL if project_id is None else f"{PROJECT_LABEL}={project_id}"
    removed = []
    for container in client.containers.list(all=True, filters={"label": label}):
        secret_dirs = {
            Path(m["Source"]).parent for m in container.attrs.get("Mounts") or ()
            if m.get("Destination", "").startswith(f"{SECRETS_DIR}/") and Path(m["Source"]).parent.name.startswith(PREFIX)
        }
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            continue
        removed.append(container.name)
        for directory in secret_dirs:
            shutil.rmtree(directory, ignore_errors=True)
    return removed
