"""Where a stored message's bytes live: in memory, in a blob file on disk, or made on demand.

A ``MailItem`` holds either the bytes themselves (the default, fastest for small fixtures) or a
``Body``: something that knows its size and gives the bytes when asked. A store made with a
``body_dir`` (``Store(body_dir=...)``) writes every appended message into one append-only blob
file and keeps only (offset, size) per message, so a 100,000-message folder costs its metadata,
not its bodies; FETCH of a body reads it back with one ``pread``. ``GeneratedBody`` goes further:
the bytes are a pure function of (seed, index) and are never stored at all (the bulk fixture,
``simulators.fixtures.bulk``).

The blob file is append-only: an EXPUNGE forgets the item, not its bytes (a throwaway test
store does not need compaction). ``BlobFile.reopen`` lets a new store object serve the bodies an
earlier one wrote (a server restart).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

BLOB_NAME = "bodies.blob"


class BodyError(Exception):
    """A stored body cannot be read back (file gone, or shorter than the index says)."""


class Body(Protocol):
    size: int

    def read(self) -> bytes: ...


class BlobFile:
    """One append-only file of message bodies; thread-safe (appends under a lock, reads with pread)."""

    def __init__(self, directory: Path):
        self.path = Path(directory) / BLOB_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        self._end = os.fstat(self._fd).st_size
        self._lock = threading.Lock()

    def write(self, raw: bytes) -> BlobBody:
        with self._lock:
            offset = self._end
            view = memoryview(raw)
            while view:  # os.write may write less than asked for large buffers
                done = os.pwrite(self._fd, view, offset + len(raw) - len(view))
                view = view[done:]
            self._end += len(raw)
        return BlobBody(self, offset, len(raw))

    def read(self, offset: int, size: int) -> bytes:
        data = os.pread(self._fd, size, offset)
        if len(data) != size:
            raise BodyError(f"{self.path}: body at offset {offset} has {len(data)} of {size} bytes")
        return data

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def body(self, offset: int, size: int) -> BlobBody:
        """A handle on bytes an earlier writer stored (to rebuild an index after a restart)."""
        if offset + size > self._end:
            raise BodyError(f"{self.path}: no body at offset {offset} (+{size}); the file ends at {self._end}")
        return BlobBody(self, offset, size)


@dataclass(frozen=True, slots=True)
class BlobBody:
    blob: BlobFile
    offset: int
    size: int

    def read(self) -> bytes:
        return self.blob.read(self.offset, self.size)


@dataclass(frozen=True, slots=True)
class GeneratedBody:
    """Bytes made on demand by ``make(index)``: deterministic, so never stored."""

    make: Callable[[int], bytes]
    index: int
    size: int

    def read(self) -> bytes:
        return self.make(self.index)
