"""The base image without a registry: a minimal Debian from debootstrap, imported with ``docker import``.

    ensure_base(client)        # "quirkmail-base:bookworm", built only when missing or out of date

Everything the image needs from Debian goes into debootstrap's ``--include`` (python3, venv,
Dovecot, CA certificates), so the Docker build itself needs no network. The packages come from
the host's own apt mirror (read from /etc/apt/sources.list[.d]; ``QUIRKMAIL_DEBIAN_MIRROR``
overrides it). The root filesystem is kept as a tarball under ``cache_dir()``, named by a key of
the suite, the package list and the recipe, and the imported image carries that key as a label:
a second run finds the image (or at least the tarball) and skips the work. Measured on 2 cores:
debootstrap ~50 s, import ~3 s; the image is ~175 MB.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from scenarios.docker_world.errors import BuildFailed

SUITE = "bookworm"
PACKAGES = (
    "python3", "python3-venv", "ca-certificates",
    "dovecot-core", "dovecot-imapd", "dovecot-pop3d", "dovecot-lmtpd",
)
RECIPE = 1  # bump when what is pruned or set on import changes
BASE_REPOSITORY = "quirkmail-base"
KEY_LABEL = "quirkmail.base-key"
# Package caches, apt lists and documentation: ~170 of 350 MB, none needed at run time.
PRUNE = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale")
SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
DEBOOTSTRAP_TIMEOUT = 900


def cache_dir() -> Path:
    return Path(os.environ.get("QUIRKMAIL_DOCKER_CACHE", "/var/cache/quirkmail/docker"))


def base_tag() -> str:
    return f"{BASE_REPOSITORY}:{SUITE}"


def base_key(suite: str = SUITE, packages: tuple[str, ...] = PACKAGES) -> str:
    text = f"{suite}\n{' '.join(sorted(packages))}\nrecipe {RECIPE}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def mirror_from_sources(texts: list[str], suite: str = SUITE) -> str | None:
    """The URI of the first apt source carrying ``suite`` itself (pure: deb822 and one-line forms)."""
    for text in texts:
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(re.findall(r"^([A-Za-z-]+):[ \t]*(.*)$", stanza, re.M))
            if "deb" in fields.get("Types", "").split() and suite in fields.get("Suites", "").split():
                if fields.get("Enabled", "yes").lower() != "no":
                    return fields["URIs"].split()[0]
        for line in text.splitlines():
            words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                return words[1]
    return None


def host_mirror() -> str:
    if os.environ.get("QUIRKMAIL_DEBIAN_MIRROR"):
        return os.environ["QUIRKMAIL_DEBIAN_MIRROR"]
    texts = []
    for source in SOURCES:
        files = sorted(source.glob("*.list")) + sorted(source.glob("*.sources")) if source.is_dir() else [source]
        texts += [f.read_text(encoding="utf-8", errors="replace") for f in files if f.is_file()]
    found = mirror_from_sources(texts)
    if not found:
        raise BuildFailed("debootstrap", f"no apt source for {SUITE} in /etc/apt; set QUIRKMAIL_DEBIAN_MIRROR")
    return found


@contextmanager
def build_lock(name: str) -> Iterator[None]:
    """One builder at a time on this machine (two test workers, a user's serve --docker)."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / f"{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def find_image(client, tag: str, label: str, value: str):
    """The image ``tag`` when it carries ``label=value``, else None."""
    import docker.errors

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    return image if (image.labels or {}).get(label) == value else None


def ensure_base(client, *, log: Callable[[str], None] = print) -> str:
    """The base image's tag, importing (and debootstrapping) only what is missing."""
    key = base_key()
    with build_lock("base"):
        if find_image(client, base_tag(), KEY_LABEL, key) is None:
            tarball = rootfs_tarball(key, log)
            log(f"docker import {tarball.name} as {base_tag()}")
            with open(tarball, "rb") as f:
                client.api.import_image_from_data(
                    f, repository=BASE_REPOSITORY, tag=SUITE, changes=[f"LABEL {KEY_LABEL}={key}"]
                )
            if find_image(client, base_tag(), KEY_LABEL, key) is None:
                raise BuildFailed("docker import", f"{base_tag()} is missing after the import of {tarball}")
    return base_tag()


def rootfs_tarball(key: str, log: Callable[[str], None]) -> Path:
    """The cached root filesystem tarball for ``key``, made by debootstrap when missing."""
    tarball = cache_dir() / f"rootfs-{SUITE}-{key}.tar"
    if tarball.exists():
        return tarball
    if shutil.which("debootstrap") is None:
        raise BuildFailed("debootstrap", "not installed (apt-get install debootstrap)")
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=cache_dir()))
    try:
        mirror = host_mirror()
        log(f"debootstrap {SUITE} ({len(PACKAGES)} packages from {mirror}): about a minute")
        command = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(work / "root"), mirror]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=DEBOOTSTRAP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise BuildFailed("debootstrap", f"no end after {DEBOOTSTRAP_TIMEOUT} s") from None
        if done.returncode != 0:
            raise BuildFailed("debootstrap", f"exit status {done.returncode}", done.stdout + done.stderr)
        for part in PRUNE:
            target = work / "root" / part
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True, exist_ok=True)
        partial = work / "rootfs.tar"
        # Numeric owners: the users made inside the root (dovecot, dovenull) keep their files.
        packed = subprocess.run(
            ["tar", "-C", str(work / "root"), "--numeric-owner", "-cf", str(partial), "."], capture_output=True, text=True
        )
        if packed.returncode != 0:
            raise BuildFailed("tar of the root filesystem", f"exit status {packed.returncode}", packed.stderr)
        partial.rename(tarball)
    finally:
        _remove_tree(work)
    return tarball


def _remove_tree(path: Path) -> None:
    """Remove a debootstrap target; /proc inside it may still be mounted when it failed."""
    for mount in ("proc", "sys", "dev/pts"):
        target = path / "root" / mount
        if target.is_mount():
            subprocess.run(["umount", "-l", str(target)], check=False)
    shutil.rmtree(path, ignore_errors=True)
