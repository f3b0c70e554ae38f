"""One world's passwords as files: a private temp dir of 0600 files, for docker/compose.yaml's ``secrets:``.

    directory = SecretDir({"quirkmail_password": "…", "dovecot_password": "…"})
    env["QUIRKMAIL_SECRETS"] = str(directory.path)   # the compose file's secrets: file: paths
    …
    directory.remove()                                # when the world's containers are gone

The engine bind-mounts each file read-only at /run/secrets/NAME: the value is in no container's
environment, on no command line, and readable on the host by the owner only.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

SECRETS_VARIABLE = "QUIRKMAIL_SECRETS"  # the compose file's directory of secret files
PREFIX = "quirkmail-secrets-"  # how `down` knows a mounted file's directory is a world's to remove


class SecretDir:
    def __init__(self, values: Mapping[str, str]):
        self.path = Path(tempfile.mkdtemp(prefix=PREFIX))  # mkdtemp: mode 0700
        try:
            for name, value in values.items():
                # O_EXCL|0600 from the start: the value is never in a file others could read.
                fd = os.open(self.path / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(value)
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
