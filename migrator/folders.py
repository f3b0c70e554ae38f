"""Folder mapping: which destination folder each source folder goes to. Pure: listings in, plan out.

A source name is split by the source's delimiter after stripping its personal-namespace prefix
(``INBOX.`` on Courier), giving a path of parts; the destination name is made from the parts with
the destination's delimiter and prefix. Special folders follow their role (RFC 6154 attributes,
else well-known names), so a source ``Sent Items`` lands in whatever the destination calls \\Sent.
Names here are Unicode; imapclient does the modified UTF-7 on the wire. When the destination
refuses a name (reserved, whitespace, forbidden characters, a twin differing only by case),
``alternative_names`` gives the spellings the engine tries next.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

SPECIAL_USES = ("\\Sent", "\\Trash", "\\Drafts", "\\Junk", "\\Archive", "\\All", "\\Flagged")

# Names providers give their special folders when they do not announce SPECIAL-USE (lower case).
WELL_KNOWN = {
    "\\Sent": ("sent", "sent items", "sent messages", "sent mail", "gesendet", "envoyés"),
    "\\Trash": ("trash", "deleted items", "deleted messages", "deleted", "bin", "papierkorb"),
    "\\Drafts": ("drafts", "draft", "entwürfe", "brouillons"),
    "\\Junk": ("junk", "spam", "junk e-mail", "junk email", "bulk mail"),
    "\\Archive": ("archive", "archives"),
}


@dataclass(frozen=True)
class ListEntry:
    """One LIST reply line, decoded."""

    name: str
    flags: frozenset[str] = frozenset()
    delimiter: str | None = "/"

    @property
    def selectable(self) -> bool:
        lowered = {f.lower() for f in self.flags}
        return not ({"\\noselect", "\\nonexistent"} & lowered)

    @property
    def special_use(self) -> str | None:
        for f in self.flags:
            for use in SPECIAL_USES:
                if f.lower() == use.lower():
                    return use
        return None


@dataclass(frozen=True)
class Namespace:
    """A server's personal namespace: prefix (``""`` or ``"INBOX."``) and hierarchy delimiter."""

    prefix: str = ""
    delimiter: str | None = "/"


@dataclass
class FolderPlan:
    source: str  # wire name on the source (Unicode)
    path: tuple[str, ...]  # the source's parts, prefix stripped
    destination: str  # wire name on the destination (Unicode)
    special_use: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def display_path(self) -> str:
        return "/".join(self.path)


@dataclass
class FolderMapping:
    plans: list[FolderPlan]
    skipped: list[tuple[str, str]]  # (source name, reason)


def source_path(name: str, ns: Namespace) -> tuple[str, ...]:
    """Parts of a source name: ``INBOX.Work.2024`` with prefix ``INBOX.`` → ("Work", "2024")."""
    if name.upper() == "INBOX":
        return ("INBOX",)
    rest = name
    if ns.prefix and name.upper().startswith(ns.prefix.upper()) and len(name) > len(ns.prefix):
        rest = name[len(ns.prefix) :]
    parts = tuple(rest.split(ns.delimiter)) if ns.delimiter else (rest,)
    if parts[0].upper() == "INBOX":
        parts = ("INBOX",) + parts[1:]
    return tuple(p for p in parts if p) or (name,)


def destination_name(parts: tuple[str, ...], ns: Namespace) -> str:
    if parts == ("INBOX",):
        return "INBOX"
    delim = ns.delimiter or "/"
    if ns.prefix and parts[0] == "INBOX" and ns.prefix.upper() == "INBOX" + delim:
        parts = parts[1:]  # Courier-style: INBOX's children already live under the prefix
    return ns.prefix + delim.join(parts)


def safe_parts(parts: tuple[str, ...], delimiter: str | None) -> tuple[tuple[str, ...], list[str]]:
    """Replace the destination's delimiter inside a part so one source folder stays one folder."""
    if not delimiter:
        return parts, []
    repl = "-" if delimiter == "_" else "_"
    out, notes = [], []
    for p in parts:
        if delimiter in p:
            fixed = p.replace(delimiter, repl)
            notes.append(f"name part {p!r} contains the destination delimiter {delimiter!r}: renamed {fixed!r}")
            p = fixed
        out.append(p)
    return tuple(out), notes


_UNSAFE = re.compile(r"[^\w \-.,&()'+]")


def alternative_names(name: str, delimiter: str | None) -> Iterator[str]:
    """Names to try when the destination refuses ``name`` (reserved, whitespace, forbidden
    characters, a case-only twin): first a cleaned spelling, then numbered variants."""
    parts = name.split(delimiter) if delimiter else [name]
    cleaned = [_UNSAFE.sub("_", " ".join(p.split())) or "_" for p in parts]
    clean = (delimiter or "").join(cleaned)
    if clean != name:
        yield clean
    for n in range(2, 100):
        yield f"{clean} ({n})"


def well_known_use(parts: tuple[str, ...]) -> str | None:
    if len(parts) != 1:
        return None
    lowered = parts[0].lower()
    for use, names in WELL_KNOWN.items():
        if lowered in names:
            return use
    return None


def destination_specials(entries: list[ListEntry], ns: Namespace) -> dict[str, str]:
    """Special-use → destination wire name, by attribute first, else by well-known name."""
    found: dict[str, str] = {}
    for e in entries:
        if e.selectable and e.special_use and e.special_use not in found:
            found[e.special_use] = e.name
    for e in entries:
        use = well_known_use(source_path(e.name, ns))
        if e.selectable and use and use not in found:
            found[use] = e.name
    return found


def _wanted(path: str, include: list[str], exclude: list[str]) -> str | None:
    if include and not any(fnmatch.fnmatchcase(path, g) for g in include):
        return "not included"
    for g in exclude:
        if fnmatch.fnmatchcase(path, g):
            return f"excluded by {g!r}"
    return None


def plan_folders(
    source: list[ListEntry],
    source_ns: Namespace,
    dest: list[ListEntry],
    dest_ns: Namespace,
    *,
    target_root: list[str] | tuple[str, ...] = (),
    include: list[str] = (),
    exclude: list[str] = (),
    map_special_use: bool = True,
    keep_parts_whole: bool = True,
) -> FolderMapping:
    """Map every selectable source folder to a destination name.

    With ``target_root`` everything lands below that folder under its own name (special-use
    mapping is then off: the point is to keep the source's tree apart). ``keep_parts_whole``
    (mitigation delimiter-rename): a name part holding the destination's delimiter is renamed,
    else it would split into a parent and a child there.
    """
    specials = destination_specials(dest, dest_ns) if map_special_use and not target_root else {}
    root, root_notes = safe_parts(tuple(target_root), dest_ns.delimiter)
    plans: list[FolderPlan] = []
    skipped: list[tuple[str, str]] = []
    claimed: dict[str, str] = {}
    for entry in source:
        path = source_path(entry.name, source_ns)
        shown = "/".join(path)
        if not entry.selectable:
            skipped.append((entry.name, "\\Noselect"))
            continue
        why = _wanted(shown, list(include), list(exclude))
        if why:
            skipped.append((entry.name, why))
            continue
        use = entry.special_use or well_known_use(path)
        parts, notes = safe_parts(path, dest_ns.delimiter) if keep_parts_whole else (path, [])
        if use and use in specials:
            dest_name = specials[use]
            if dest_name != destination_name(parts, dest_ns):
                notes.append(f"special-use {use}: mapped to {dest_name!r}")
        else:
            dest_name = destination_name(root + parts, dest_ns)
        if dest_name in claimed:
            notes.append(f"shares destination {dest_name!r} with source {claimed[dest_name]!r}")
        claimed.setdefault(dest_name, entry.name)
        plans.append(FolderPlan(entry.name, path, dest_name, use, root_notes + notes))
    return FolderMapping(plans, skipped)
