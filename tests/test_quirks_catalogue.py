"""The quirk catalogue (../shared/QUIRKS.md) is covered: every quirk id has a scenario under
scenarios/library/quirks/, and every registered simulator quirk is used by a scenario or a profile.

A scenario covers an id when its file is named after it, or when ALIASES says which scenario does
(ids whose scenario carries the provider's name, or several ids sharing one scenario).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from simulators import quirks as quirk_registry
from simulators.profiles import load_profile, profile_names

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT.parent / "shared" / "QUIRKS.md"
LIBRARY = ROOT / "scenarios" / "library"

# quirk id → the scenario under quirks/ that reproduces it, where the file carries another name.
ALIASES: dict[str, str] = {
    "app-password-required": "imap-app-password-required",
    "oauth-only": "imap-oauth-only",
    "exchange-nonmail-folders-over-imap": "m365-nonmail-folders-over-imap",
    "gmail-labels-as-folders": "gmail-labels-once",
    "gmail-all-mail-archive-only": "gmail-labels-per-label",   # archive-only mail from All Mail, into Archive
    "gmail-special-folders": "gmail-localised-special-folders",
    "appendlimit": "appendlimit-advertised",
}


def catalogue_ids() -> list[str]:
    if not CATALOGUE.exists():
        pytest.skip(f"{CATALOGUE} is not beside this checkout")
    ids: list[str] = []
    for line in CATALOGUE.read_text(encoding="utf-8").splitlines():
        if line.startswith("- **"):
            # "- **huge-messages**, **bare-lf**, ... — content ..." names several ids on one line.
            head = line.split(" — ", 1)[0].split(" · ", 1)[0]
            ids += re.findall(r"\*\*([a-z0-9-]+)\*\*", head)
    return ids


def test_the_catalogue_is_parsed():
    ids = catalogue_ids()
    assert len(ids) == len(set(ids)) >= 50
    assert {"pop3-inbox-only", "bare-lf", "smtp-quirks", "gmail-bandwidth-cap"} <= set(ids)


def test_every_catalogue_quirk_has_a_scenario_under_quirks():
    present = {p.stem for p in (LIBRARY / "quirks").glob("*.yaml")}
    uncovered = [i for i in catalogue_ids() if ALIASES.get(i, i) not in present]
    assert not uncovered, f"QUIRKS.md ids without a scenario under scenarios/library/quirks/: {uncovered}"


def _quirk_names(specs) -> set[str]:
    names = set()
    for spec in specs or []:
        names.add(spec["name"] if isinstance(spec, dict) else str(spec).split(":", 1)[0])
    return names


def test_every_registered_quirk_is_exercised_by_a_scenario_or_a_profile():
    quirk_registry._load_builtin_quirks()
    used: set[str] = set()
    for path in LIBRARY.glob("*/*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for side in ("source", "destination", "pim_destination"):
            used |= _quirk_names((data.get(side) or {}).get("quirks"))
    for name in profile_names():
        used |= {q.name for q in load_profile(name).quirks}
    unused = sorted(set(quirk_registry.REGISTRY) - used)
    assert not unused, f"registered quirks no scenario or profile uses: {unused}"
