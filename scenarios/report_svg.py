"""Inline SVG charts for report.html, drawn here so the page needs no script and no network.

Pure functions: numbers in, an ``<svg>`` string out. Every bar is a ``<rect class="bar">`` with
``data-count`` / ``data-seconds``, so a test (or a reader's devtools) can check what was drawn.
"""

from __future__ import annotations

from html import escape

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
# Timestamp differences span seconds (a lost zone) to years (the destination stamped "now"):
# bins by magnitude, both signs, so each cause lands in its own bar.
_EDGES = [(1.0, "1s"), (MINUTE, "1min"), (HOUR, "1h"), (DAY, "1d"), (30 * DAY, "30d"), (365 * DAY, "1y")]


def offset_bins() -> list[tuple[float, float, str]]:
    """(low, high, label) over the real line, earlier (−) first; zero is never a mismatch."""
    ups = []
    low, low_label = 0.0, ""
    for edge, label in _EDGES:
        ups.append((low, edge, f"{low_label}…{label}" if low_label else f"<{label}"))
        low, low_label = edge, label
    ups.append((low, float("inf"), f">{low_label}"))
    downs = [(-high, -low, "−" + label) for low, high, label in reversed(ups)]
    return downs + [(low, high, "+" + label) for low, high, label in ups]


def bin_counts(offsets: list[float]) -> list[tuple[str, int]]:
    counts = []
    for low, high, label in offset_bins():
        inside = [o for o in offsets if (low <= o < high if o >= 0 else low < o <= high)]
        counts.append((label, len(inside)))
    return counts


def histogram(offsets: list[float], *, width: int = 640, height: int = 160) -> str:
    """Destination INTERNALDATE − source instant, one bar per bin (empty bins drawn flat)."""
    counts = bin_counts(offsets)
    top = max((n for _, n in counts), default=0) or 1
    slot = width / len(counts)
    plot = height - 40
    parts = [f'<svg class="chart histogram" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="timestamp differences">']
    for i, (label, n) in enumerate(counts):
        h = plot * n / top
        x = i * slot + 2
        parts.append(f'<rect class="bar" data-count="{n}" x="{x:.1f}" y="{10 + plot - h:.1f}" '
                     f'width="{slot - 4:.1f}" height="{h:.1f}"><title>{escape(label)}: {n}</title></rect>')
        if n:
            parts.append(f'<text x="{x + (slot - 4) / 2:.1f}" y="{8 + plot - h:.1f}" text-anchor="middle">{n}</text>')
        parts.append(f'<text class="axis" x="{x + (slot - 4) / 2:.1f}" y="{height - 12}" '
                     f'text-anchor="middle">{escape(label)}</text>')
    parts.append(f'<line x1="0" y1="{10 + plot}" x2="{width}" y2="{10 + plot}"/></svg>')
    return "".join(parts)


def timeline(lanes: list[tuple[str, float, list[tuple[float, float]]]], *, width: int = 640) -> str:
    """One lane per run: the run's length, and a bar per wait (start, seconds) inside it."""
    longest = max((max([length] + [s + w for s, w in waits]) for _, length, waits in lanes), default=0) or 1
    scale = (width - 80) / longest
    height = 24 * len(lanes) + 20
    parts = [f'<svg class="chart timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="throttle waits per run">']
    for i, (name, length, waits) in enumerate(lanes):
        y = 4 + 24 * i
        parts.append(f'<text x="0" y="{y + 14}">{escape(name)}</text>')
        parts.append(f'<rect class="run" x="80" y="{y + 8}" width="{length * scale:.1f}" height="4"/>')
        for start, seconds in waits:
            parts.append(f'<rect class="bar wait" data-seconds="{seconds:g}" x="{80 + start * scale:.1f}" y="{y}" '
                         f'width="{max(seconds * scale, 2):.1f}" height="20"><title>waited {seconds:g} s '
                         f'at {start:g} s</title></rect>')
    parts.append(f'<text class="axis" x="80" y="{height - 2}">0 s</text>'
                 f'<text class="axis" x="{width}" y="{height - 2}" text-anchor="end">{longest:.1f} s</text></svg>')
    return "".join(parts)
