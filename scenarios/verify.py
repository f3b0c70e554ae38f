"""Engine-agnostic verification: does the destination hold every source message once, intact?

``compare(source, dest, scope)`` is pure: two ``MailboxSnapshot``s in, a ``VerifyReport`` out.
It maps each source folder to its destination folder (``plan``: the engine's documented
folder-mapping rules), pairs messages by the SHA-256 of their bytes, then pairs what is left
by identity (Message-ID or a header hash) to tell "bytes changed" apart from "missing" plus
"unexpected". A message is *identical* when bytes, flags and the INTERNALDATE instant all match.

``verify(source_endpoint, dest_endpoint, scope)`` reads both sides over IMAP and compares them,
so it judges a migration done by any engine.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, computed_field

from migrator.folders import ListEntry, Namespace, plan_folders
from scenarios.snapshot import FolderSnapshot, MailboxSnapshot, MessageRecord, snapshot_imap

if TYPE_CHECKING:
    from migrator.urls import Endpoint


class VerifyScope(BaseModel):
    """The part of the migration options that decides where a source folder should land."""

    target_root: list[str] = []
    include: list[str] = []
    exclude: list[str] = []
    map_special_use: bool = True

    @classmethod
    def from_options(cls, options: Any) -> VerifyScope:
        """From ``migrator.engine.MigrationOptions`` (or anything with the same fields)."""
        return cls(**{name: getattr(options, name) for name in cls.model_fields if hasattr(options, name)})


def plan(source: MailboxSnapshot, dest: MailboxSnapshot, scope: VerifyScope) -> list[tuple[FolderSnapshot, str]]:
    """Each selected source folder with the key ("/"-joined path) of its destination folder.

    The engine's own mapping rules (``migrator.folders``: special-use twins, well-known names,
    target_root, include/exclude) applied to the snapshots' normalised paths, so the verifier
    judges where messages *should* be by the documented rules, whoever moved them.
    """
    # Names are rebuilt from the snapshots' paths: source parts joined by a character no name
    # holds (so a part "a/b" stays one part), destination parts by the destination's delimiter
    # (so the engine's rule "a part holding that delimiter is renamed" applies here too).
    dest_delim = dest.delimiter or "/"
    src_entries = [_entry(f, _UNSPLIT) for f in source.folders.values()]
    dest_entries = [_entry(f, dest_delim) for f in dest.folders.values()]
    mapping = plan_folders(
        src_entries,
        Namespace(prefix="", delimiter=_UNSPLIT),
        dest_entries,
        Namespace(prefix="", delimiter=dest_delim),
        target_root=scope.target_root,
        include=scope.include,
        exclude=scope.exclude,
        map_special_use=scope.map_special_use,
    )
    by_name = {_UNSPLIT.join(f.path): f for f in source.folders.values()}
    return [(by_name[p.source], "/".join(p.destination.split(dest_delim))) for p in mapping.plans]


_UNSPLIT = "\x00"


def _entry(folder: FolderSnapshot, delimiter: str) -> ListEntry:
    flags = frozenset({folder.special_use}) if folder.special_use else frozenset()
    return ListEntry(name=delimiter.join(folder.path), flags=flags, delimiter=delimiter)


class MessageRef(BaseModel):
    uid: int
    identity: str
    detail: str = ""
    offset_seconds: float | None = None  # date mismatches: destination INTERNALDATE − source instant


class FolderDiff(BaseModel):
    source: str
    destination: str
    destination_exists: bool = True
    source_count: int
    dest_count: int
    missing: list[MessageRef] = []
    duplicated: list[MessageRef] = []
    unexpected: list[MessageRef] = []
    date_mismatches: list[MessageRef] = []
    flag_mismatches: list[MessageRef] = []
    byte_mismatches: list[MessageRef] = []
    # Not a failure: IMAP requires CRLF, and servers convert a bare-LF message (noted, not judged).
    crlf_normalised: list[MessageRef] = []
    # Not failures either: flags the destination's PERMANENTFLAGS cannot hold (lost on the way),
    # and $MDNSent gained by a read message that asked for a receipt (mdn-resend's repair).
    flags_unstorable: list[MessageRef] = []
    mdn_marked: list[MessageRef] = []

    @computed_field
    @property
    def identical(self) -> bool:
        """Every source message once at the destination with equal bytes, flags and date."""
        return not (
            self.missing
            or self.duplicated
            or self.date_mismatches
            or self.flag_mismatches
            or self.byte_mismatches
        )


PROBLEMS = ("missing", "duplicated", "unexpected", "date_mismatches", "flag_mismatches", "byte_mismatches")
NOTES = ("crlf_normalised", "flags_unstorable", "mdn_marked")


class VerifyReport(BaseModel):
    source: str
    destination: str
    folders: list[FolderDiff] = []
    extra_folders: list[str] = []  # destination folders no source folder maps to
    dest_counts: dict[str, int] = {}  # every destination folder (path joined by "/") → messages

    @computed_field
    @property
    def identical(self) -> bool:
        return all(f.identical for f in self.folders)

    @property
    def exact(self) -> bool:
        """Identical, and nothing else at the destination either: same folders, same messages."""
        return self.identical and self.total("unexpected") == 0 and not self.extra_folders

    def total(self, problem: str) -> int:
        return sum(len(getattr(f, problem)) for f in self.folders)

    def summary(self) -> str:
        lines = [f"verify {self.source} → {self.destination}"]
        for f in self.folders:
            mark = "FAIL" if not f.identical else "note" if f.unexpected or f.crlf_normalised else "ok  "
            where = f.destination if f.destination_exists else f"{f.destination} (does not exist)"
            lines.append(f"  {mark} {f.source} → {where}: {f.source_count} → {f.dest_count}")
            for problem in PROBLEMS + NOTES:
                refs = getattr(f, problem)
                if refs:
                    shown = ", ".join(_ref_text(r) for r in refs[:5])
                    more = f" (+{len(refs) - 5} more)" if len(refs) > 5 else ""
                    lines.append(f"       {problem.replace('_', ' ')}: {len(refs)}: {shown}{more}")
        if self.extra_folders:
            lines.append(f"  note destination-only folders: {', '.join(self.extra_folders)}")
        shown = PROBLEMS + tuple(n for n in NOTES if self.total(n))
        totals = ", ".join(f"{p.replace('_', ' ')} {self.total(p)}" for p in shown)
        verdict = "IDENTICAL" if self.identical else "NOT IDENTICAL"
        lines.append(f"{verdict}: {len(self.folders)} folders; {totals}")
        return "\n".join(lines)


def _ref_text(ref: MessageRef) -> str:
    text = f"uid {ref.uid} {ref.identity}"
    return f"{text} ({ref.detail})" if ref.detail else text


# Comparison -------------------------------------------------------------------------------------


def compare(source: MailboxSnapshot, dest: MailboxSnapshot, scope: VerifyScope | None = None) -> VerifyReport:
    scope = scope or VerifyScope()
    report = VerifyReport(
        source=source.label,
        destination=dest.label,
        dest_counts={key: len(f.messages) for key, f in dest.folders.items()},
    )
    mapped: set[str] = set()
    for folder, key in plan(source, dest, scope):
        mapped.add(key)
        twin = dest.folders.get(key)
        report.folders.append(_compare_folder(folder, key, twin))
    # A target_root or a special-use twin implies its parents; those are not "extra".
    implied = {"/".join(k.split("/")[:i]) for k in mapped for i in range(1, k.count("/") + 1)}
    report.extra_folders = sorted(k for k in dest.folders if k not in mapped | implied)
    return report


def _compare_folder(src: FolderSnapshot, dest_key: str, dest: FolderSnapshot | None) -> FolderDiff:
    dest_messages = dest.messages if dest else []
    diff = FolderDiff(
        source="/".join(src.path),
        destination=dest_key,
        destination_exists=dest is not None,
        source_count=len(src.messages),
        dest_count=len(dest_messages),
    )
    permanent = dest.permanent_flags if dest else None
    by_hash: dict[str, list[MessageRecord]] = defaultdict(list)
    for m in dest_messages:
        by_hash[m.sha256_crlf].append(m)
    leftover_src: list[MessageRecord] = []
    for m in src.messages:
        copies = by_hash.get(m.sha256_crlf)
        if copies:
            check_pair(m, copies.pop(0), diff, permanent)
        else:
            leftover_src.append(m)
    source_hashes = {m.sha256_crlf for m in src.messages}
    leftover_dest: list[MessageRecord] = []
    for sha, copies in by_hash.items():
        if sha in source_hashes:
            # More copies of a source message than the source has: duplicates, not strangers.
            diff.duplicated.extend(_ref(m) for m in copies)
        else:
            leftover_dest.extend(copies)
    _pair_by_identity(leftover_src, leftover_dest, diff, permanent)
    return diff


def _pair_by_identity(
    src: list[MessageRecord], dest: list[MessageRecord], diff: FolderDiff, permanent: list[str] | None
) -> None:
    by_identity: dict[str, list[MessageRecord]] = defaultdict(list)
    for m in dest:
        by_identity[m.identity].append(m)
    for m in src:
        candidates = by_identity.get(m.identity)
        if not candidates:
            diff.missing.append(_ref(m))
            continue
        twin = candidates.pop(0)
        diff.byte_mismatches.append(
            _ref(m, f"{m.size} bytes at the source, {twin.size} at the destination (uid {twin.uid})")
        )
        check_pair(m, twin, diff, permanent)
    for rest in by_identity.values():
        diff.unexpected.extend(_ref(m) for m in rest)


def check_pair(src: MessageRecord, dest: MessageRecord, diff: FolderDiff, permanent: list[str] | None) -> None:
    """Judge one paired message's date and flags into ``diff`` (also the replay scenarios' judge)."""
    if src.sha256 != dest.sha256 and src.sha256_crlf == dest.sha256_crlf:
        diff.crlf_normalised.append(_ref(src, "came back as IMAP shows it: bare LF as CRLF, NUL as 0x80"))
    if src.internaldate != dest.internaldate:  # aware datetimes: compares the instants
        ref = _ref(src, f"INTERNALDATE {src.internaldate.isoformat()} became {dest.internaldate.isoformat()}")
        ref.offset_seconds = (dest.internaldate - src.internaldate).total_seconds()
        diff.date_mismatches.append(ref)
    lost, gained = src.flags - dest.flags, dest.flags - src.flags
    unstorable = {f for f in lost if not _storable(f, permanent)}
    if unstorable:
        diff.flags_unstorable.append(_ref(src, f"the destination cannot store {' '.join(sorted(unstorable))}"))
    if src.mdn_requested and MDN_SENT in gained:
        diff.mdn_marked.append(_ref(src, f"gained {MDN_SENT}: a read message that asked for a receipt"))
        gained = gained - {MDN_SENT}
    lost = sorted(lost - unstorable)
    gained = sorted(gained)
    if lost or gained:
        detail = "; ".join(
            part
            for part in (
                f"lost {' '.join(lost)}" if lost else "",
                f"gained {' '.join(gained)}" if gained else "",
            )
            if part
        )
        diff.flag_mismatches.append(_ref(src, detail))


MDN_SENT = "$MDNSent"


def _storable(flag: str, permanent: list[str] | None) -> bool:
    """Whether a destination with these PERMANENTFLAGS can hold ``flag`` (None: any flag)."""
    if permanent is None:
        return True
    allowed = {f.lower() for f in permanent}
    return flag.lower() in allowed or (not flag.startswith("\\") and "\\*" in allowed)


def _ref(m: MessageRecord, detail: str = "") -> MessageRef:
    return MessageRef(uid=m.uid, identity=m.identity, detail=detail)


# I/O entry point --------------------------------------------------------------------------------


def verify(source: Endpoint, dest: Endpoint, scope: VerifyScope | None = None) -> VerifyReport:
    """Read both mailboxes over IMAP and compare them."""
    return compare(snapshot_imap(source), snapshot_imap(dest, permanent_flags=True), scope)

