"""Typed errors of the Docker world; each names the thing (socket, file, service, port) and the cause.

    DockerWorldError (MigratorError)   base                                              → 3
    ├── EngineUnavailable              no Docker engine answers on the socket; how to start one → 3
    ├── ComposeError (UsageError)      the compose file: file, service, field, problem  → 2
    ├── BuildFailed                    base image or image build: the step and its output → 3
    └── ServiceNotReady                a container exited or gave no right greeting in time → 3
"""

from __future__ import annotations

from pathlib import Path

from migrator.errors import ExitCode, MigratorError


class DockerWorldError(MigratorError):
    exit_code = ExitCode.CONNECTION


class EngineUnavailable(DockerWorldError):
    """No engine answers. The text names the socket, the cause and how to start one."""

    def __init__(self, socket: str, cause: str, hint: str = ""):
        self.socket = socket
        self.cause = cause
        text = f"no Docker engine at {socket}: {cause}"
        super().__init__(f"{text}; {hint}" if hint else text)


class ComposeError(DockerWorldError):
    exit_code = ExitCode.USAGE

    def __init__(self, file: Path | str, where: str, problem: str):
        self.file = Path(file)
        self.where = where
        self.problem = problem
        super().__init__(f"{self.file}: {where}: {problem}" if where else f"{self.file}: {problem}")


def with_tail(text: str, output: str, lines: int = 15) -> str:
    """``text`` and, below it, the last lines of a tool's output or a container's log."""
    tail = "\n".join(output.strip().splitlines()[-lines:])
    return f"{text}\n{tail}" if tail else text


class BuildFailed(DockerWorldError):
    def __init__(self, step: str, cause: str, output: str = ""):
        self.step = step
        self.cause = cause
        super().__init__(with_tail(f"{step} failed: {cause}", output))


class ServiceNotReady(DockerWorldError):
    def __init__(self, service: str, problem: str, logs: str = ""):
        self.service = service
        self.problem = problem
        super().__init__(with_tail(f"service {service!r} not ready: {problem}", logs))
