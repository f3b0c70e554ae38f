"""The compose file's images, built from the local base and a wheelhouse made on the host.

    ensure_images(client, project)      # builds each image with a build: block, unless up to date

An image is up to date when it carries the content label of what went into it: quirkmail's
source files, pyproject.toml, the build context (Dockerfile, dovecot/) and the base image's key.
Otherwise the base is made (base.ensure_base), quirkmail and its dependencies are built into
wheels by the host's pip (Python 3.11, as in the image; registries are reachable from the host,
not from inside a build) and the build context is staged in a temporary directory with them
under build/wheels/{deps,app}. Measured on 2 cores: wheelhouse ~30 s (the dependencies' wheels
are cached by pyproject.toml: then ~15 s), docker build ~10–60 s; with the layers cached, a change
to quirkmail only reinstalls its own wheel.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from scenarios.docker_world.base import base_key, build_lock, cache_dir, ensure_base, find_image
from scenarios.docker_world.compose import BuildSpec, ComposeProject
from scenarios.docker_world.errors import BuildFailed

CONTENT_LABEL = "quirkmail.content"
REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE_PYTHON = (3, 11)  # bookworm's python3: the wheels must match it
WHEEL_TIMEOUT = 600
BUILD_TIMEOUT = 900


def content_key(files: Iterable[tuple[str, bytes]], base: str) -> str:
    """A short digest of (relative path, bytes) pairs and the base key (pure; order-insensitive)."""
    digest = hashlib.sha256(f"base {base}\n".encode())
    for name, data in sorted(files):
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:16]


def _tree_files(root: Path, parts: Iterable[str], prefix: str = "") -> Iterable[tuple[str, bytes]]:
    for part in parts:
        path = root / part
        paths = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for p in paths:
            if "__pycache__" in p.parts or p.suffix in (".pyc", ".pyo") or "build" in p.relative_to(root).parts[:1]:
                continue
            yield prefix + str(p.relative_to(root)), p.read_bytes()


def shipped_packages(pyproject_text: str) -> list[str]:
    """The top-level package folders pyproject.toml's setuptools find ``include`` names (pure)."""
    import tomllib

    patterns = tomllib.loads(pyproject_text)["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted({p.split(".")[0].rstrip("*") for p in patterns})


def build_key(build: BuildSpec, root: Path = REPO_ROOT) -> str:
    """The content label's value: pyproject.toml, the packages it ships (not README.md: it is only
    wheel metadata, no reason for a rebuild), the build context and the base key."""
    pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
    files = list(_tree_files(root, ["pyproject.toml", *shipped_packages(pyproject)]))
    context = build.context
    files += _tree_files(context, sorted(p.name for p in context.iterdir() if p.name != "build"), prefix="context/")
    return content_key(files, base_key())


def ensure_images(client, project: ComposeProject, *, log: Callable[[str], None] = print) -> None:
    for tag, build in project.images().items():
        if build is None:
            continue  # an image to run as it is: the run says so if it is missing
        key = build_key(build)
        with build_lock("image"):
            if find_image(client, tag, CONTENT_LABEL, key) is not None:
                continue
            base = ensure_base(client, log=log)
            outdated = _image_id(client, tag)
            with tempfile.TemporaryDirectory(prefix="quirkmail-build-") as staging:
                context = stage_context(build, Path(staging), log)
                _build(client, context, build, tag, {"BASE": base, **build.args}, {CONTENT_LABEL: key}, log)
            _remove_outdated(client, outdated, tag)


def _image_id(client, tag: str) -> str | None:
    import docker.errors

    try:
        return client.images.get(tag).id
    except docker.errors.ImageNotFound:
        return None


def _remove_outdated(client, image_id: str | None, tag: str) -> None:
    """Drop the image the tag named before this build: each rebuild would otherwise leave ~350 MB."""
    import docker.errors

    if image_id is None or image_id == _image_id(client, tag):
        return
    try:
        client.images.remove(image_id)
    except docker.errors.APIError:  # still used by a container (another world): left for later
        pass


def stage_context(build: BuildSpec, staging: Path, log: Callable[[str], None]) -> Path:
    """A copy of the build context with build/wheels/deps (dependencies) and build/wheels/app (quirkmail).

    The dependencies' wheels are kept under cache_dir(), keyed by pyproject.toml: while it is
    unchanged, only quirkmail's own wheel is built (seconds instead of half a minute).
    """
    if sys.version_info[:2] != IMAGE_PYTHON:
        raise BuildFailed("wheelhouse", f"the image runs Python {'.'.join(map(str, IMAGE_PYTHON))}; "
                          f"build the wheels with that version, not {sys.version.split()[0]}")
    context = staging / "context"
    shutil.copytree(build.context, context, ignore=shutil.ignore_patterns("build", "__pycache__"))
    deps, app = context / "build" / "wheels" / "deps", context / "build" / "wheels" / "app"
    app.mkdir(parents=True)
    cached = deps_cache()
    if cached.is_dir():
        log("pip wheel: quirkmail (its dependencies' wheels from the cache)")
        _pip_wheel(app, "--no-deps")
        shutil.copytree(cached, deps)
    else:
        log("pip wheel: quirkmail and its dependencies")
        _pip_wheel(staging / "wheels")
        deps.mkdir(parents=True)
        for wheel in (staging / "wheels").glob("*.whl"):
            shutil.move(wheel, (app if wheel.name.startswith("quirkmail-") else deps) / wheel.name)
        partial = Path(tempfile.mkdtemp(prefix="wheels-", dir=cache_dir()))
        shutil.copytree(deps, partial, dirs_exist_ok=True)
        partial.rename(cached)  # whole or not at all: a killed build leaves no half cache
    if not any(app.glob("quirkmail-*.whl")):
        raise BuildFailed("pip wheel", f"no quirkmail wheel among {sorted(p.name for p in app.iterdir())}")
    return context


def deps_cache() -> Path:
    digest = hashlib.sha256((REPO_ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    return cache_dir() / f"wheels-py{IMAGE_PYTHON[0]}{IMAGE_PYTHON[1]}-{digest}"


def _pip_wheel(target: Path, *options: str) -> None:
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", *options,
               "-w", str(target), str(REPO_ROOT)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=WHEEL_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise BuildFailed("pip wheel", f"no end after {WHEEL_TIMEOUT} s") from None
    if done.returncode != 0:
        raise BuildFailed("pip wheel", f"exit status {done.returncode}", done.stderr)


def _build(client, context: Path, build: BuildSpec, tag: str, args: dict, labels: dict, log) -> None:
    import docker.errors

    log(f"docker build {tag}")
    try:
        client.images.build(
            path=str(context), dockerfile=build.dockerfile, tag=tag, buildargs=args, labels=labels,
            rm=True, forcerm=True, timeout=BUILD_TIMEOUT,
        )
    except docker.errors.BuildError as exc:
        output = "".join(str(chunk.get("stream", chunk.get("error", ""))) for chunk in exc.build_log)
        raise BuildFailed(f"docker build {tag}", exc.msg, output) from None
    except docker.errors.APIError as exc:
        raise BuildFailed(f"docker build {tag}", str(exc)) from None
