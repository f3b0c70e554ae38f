"""Files in, the same kind of files out: transcripts, .eml files, mbox files, Maildir(++) trees;
customers' logs (Dovecot rawlogs, imapsync ``--debugimap``) in, a folder of transcripts out.

Each kind keeps what a loader reads from it (``simulators/fixtures/loaders.py``): an mbox keeps its
``From `` lines' dates and Status headers, a Maildir its folder layout (names rewritten through
modified UTF-7), its file names' flags and its files' mtimes (the INTERNALDATE), an .eml its bytes'
layout. Dovecot's index, cache and uidlist files are left out: they hold copies of headers.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from transcripts import anon_text, format as tformat, imapsync, rawlog
from transcripts.anon_imap import folder
from transcripts.anonymise import AnonymiseError, Anonymiser

_FROM_LINE = re.compile(rb"^From (\S+)(.*)$", re.S)
_MBOX_SPLIT = re.compile(rb"(?:^|(?<=\n))(?=From )")
_MAILDIR_KEEP = ("dovecot-keywords", "maildirfolder")

Writer = Callable[[Path, bytes], None]


def kind_of(path: Path) -> str:
    """transcript | transcript-dir | rawlog | imapsync-log | eml | eml-dir | mbox | maildir, or AnonymiseError
    naming what it is not."""
    if path.is_dir():
        if (path / "cur").is_dir() and (path / "new").is_dir():
            return "maildir"
        if any(p.suffix.lower() == ".eml" for p in path.iterdir()):
            return "eml-dir"
        if any(path.glob("*.in")):
            return "rawlog"
        if _transcripts_under(path):
            return "transcript-dir"
        raise AnonymiseError(str(path), "a directory that is neither a Maildir (cur/, new/) nor holds .eml files "
                                        "or transcripts")
    if not path.is_file():
        raise AnonymiseError(str(path), "no such file or directory")
    if tformat.looks_like_transcript(path):
        return "transcript"
    if path.suffix in (".in", ".out"):
        return "rawlog"
    if imapsync.looks_like_log(path):
        return "imapsync-log"
    head = _read(path)[:5]
    if head == b"From ":
        return "mbox"
    if path.suffix.lower() == ".eml" or re.match(rb"[\x21-\x39\x3b-\x7e]+:", head):
        return "eml"
    raise AnonymiseError(str(path), "not a transcript, an .eml file, an mbox file or a Maildir")


def learn(anonymiser: Anonymiser, inputs: list[Path]) -> list[str]:
    """The first pass: every input read and anonymised, nothing written, so that server prose and
    file names lose names that only a later file shows. Returns the inputs' kinds."""
    kinds = [kind_of(path) for path in inputs]
    for path, kind in zip(inputs, kinds):
        _ANONYMISERS[kind](anonymiser, path, Path(), False)
    return kinds


def write(anonymiser: Anonymiser, inputs: list[Path], outputs: list[Path], kinds: list[str]) -> None:
    """The second pass: each input to its output (``learn`` first)."""
    for path, out, kind in zip(inputs, outputs, kinds):
        _ANONYMISERS[kind](anonymiser, path, out, True)


def output_name(anonymiser: Anonymiser, path: Path) -> str:
    """A file name may name the customer: its stem loses known names and addresses."""
    stem = anon_text.known_words(anonymiser.pseudonyms, path.stem.encode("utf-8", "surrogateescape"))
    return stem.decode("utf-8", "surrogateescape") + path.suffix


# kinds -------------------------------------------------------------------------------------------


def _transcript(a: Anonymiser, path: Path, out: Path, write: bool) -> None:
    try:
        transcript = tformat.read(path)
    except tformat.TranscriptError as exc:
        raise AnonymiseError(str(path), exc.cause) from None
    new = a.transcript(transcript)
    if write:
        tformat.write(new, out)


def _eml(a: Anonymiser, path: Path, out: Path, write: bool) -> None:
    new = a.message(_read(path))
    if write:
        _write(out, new, like=path)


def _eml_dir(a: Anonymiser, path: Path, out: Path, write: bool) -> None:
    for file in sorted(p for p in path.iterdir() if p.suffix.lower() == ".eml" and p.is_file()):
        _eml(a, file, out / output_name(a, file), write)


def _transcript_dir(a: Anonymiser, path: Path, out: Path, write: bool) -> None:
    """A ``--record`` directory: every transcript under it, in the same tree (names rewritten)."""
    for file in _transcripts_under(path):
        rel = file.relative_to(path)
        target = out.joinpath(*(output_name(a, Path(part)) for part in rel.parts))
        _transcript(a, file, target, write)


def _imported(a: Anonymiser, path: Path, out: Path, write: bool) -> None:
    """A customer's log (Dovecot rawlog pairs or folder, imapsync ``--debugimap``): imported by
    ``transcripts.rawlog`` (passwords masked there), each session written as an anonymised
    transcript under ``out``, ready for ``quirkmail replay``."""
    try:
        imported = rawlog.load([path])
    except (rawlog.RawlogError, tformat.TranscriptError) as exc:
        raise AnonymiseError(exc.source, f"line {exc.line}: {exc.cause}" if exc.line else exc.cause) from None
    for name, transcript in imported.sessions:
        new = a.transcript(transcript)
        if write:
            stem = anon_text.known_words(a.pseudonyms, name.encode("utf-8", "surrogateescape")).decode(
                "utf-8", "surrogateescape")
            tformat.write(new, out / (stem if stem.endswith(tformat.SUFFIX) else stem + tformat.SUFFIX))


def _transcripts_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob(f"*{tformat.SUFFIX}") if p.is_file() and tformat.looks_like_transcript(p))


def _mbox(a: Anonymiser, path: Path, out: Path, write: bool) -> None:
    data = _read(path)
    new = b"".join(_mbox_message(a, piece) for piece in _MBOX_SPLIT.split(data) if piece)
    if write:
        _write(out, anon_text.same_length(data, new, str(path)), like=path)


def _mbox_message(a: Anonymiser, piece: bytes) -> bytes:
    """``From sender date`` then the message: the sender rewritten, the date (INTERNALDATE) kept."""
    if not piece.startswith(b"From "):
        return a.message(piece)
    end = piece.find(b"\n") + 1 or len(piece)
    line = _FROM_LINE.match(piece[:end])
    sender = line[1] if line else b""
    new_sender = a.pseudonyms.address(sender) if b"@" in sender else sender
    return b"From " + new_sender + piece[5 + len(sender):end] + a.message(piece[end:])


def _maildir(a: Anonymiser, path: Path, out: Path, write: bool) -> None:
    for directory, rel in [(path, Path())] + _subfolders(path):
        target = out / _folder_dir(a, rel)
        for sub in ("cur", "new", "tmp"):
            if write:
                (target / sub).mkdir(parents=True, exist_ok=True)
            source = directory / sub
            if sub == "tmp" or not source.is_dir():
                continue
            for file in sorted(source.iterdir()):
                if file.is_file() and not file.name.startswith("."):
                    new = a.message(_read(file))
                    if write:
                        _write(target / sub / _maildir_name(a, file.name), new, like=file)
        for name in _MAILDIR_KEEP:
            if write and (directory / name).is_file():
                shutil.copy2(directory / name, target / name)
        subscriptions = directory / "subscriptions"
        if subscriptions.is_file():
            lines = _read(subscriptions).split(b"\n")
            new = b"\n".join(folder(a.pseudonyms, line) if line else line for line in lines)
            if write:
                _write(target / "subscriptions", new, like=subscriptions)


def _subfolders(path: Path) -> list[tuple[Path, Path]]:
    return sorted((p, Path(p.name)) for p in path.iterdir()
                  if p.is_dir() and p.name.startswith(".") and p.name not in (".", "..") and (p / "cur").is_dir())


def _folder_dir(a: Anonymiser, rel: Path) -> str:
    """``.Projekte.&AMQ-rger`` → ``.Qwertzui.&AOU-xqzt``: Maildir++ parts are modified UTF-7."""
    name = str(rel)
    if name in ("", "."):
        return ""
    parts = name[1:].split(".")
    return "." + ".".join(os.fsdecode(folder(a.pseudonyms, os.fsencode(part))) for part in parts)


def _maildir_name(a: Anonymiser, name: str) -> str:
    """``1700000000.M1P2.host,S=123:2,S``: the host part may name the customer's machine."""
    base, sep, info = name.partition(":")
    fields = base.split(".")
    if len(fields) >= 3:
        host, comma, rest = fields[2].partition(",")
        fields[2] = a.pseudonyms.text(host, identity=False) + comma + rest
    return ".".join(fields) + sep + info


_ANONYMISERS: dict[str, Callable[[Anonymiser, Path, Path, bool], None]] = {
    "transcript": _transcript,
    "eml": _eml,
    "eml-dir": _eml_dir,
    "transcript-dir": _transcript_dir,
    "rawlog": _imported,
    "imapsync-log": _imported,
    "mbox": _mbox,
    "maildir": _maildir,
}


# files -------------------------------------------------------------------------------------------


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AnonymiseError(str(path), f"cannot read: {exc.strerror or exc}") from None


def _write(path: Path, data: bytes, *, like: Path) -> None:
    """Written with the original's mtime: the Maildir's INTERNALDATE, an .eml's fallback date."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        stat = like.stat()
        os.utime(path, (stat.st_atime, stat.st_mtime))
    except OSError as exc:
        raise AnonymiseError(str(path), f"cannot write: {exc.strerror or exc}") from None
