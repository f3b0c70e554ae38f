"""report.html: the page a reviewer reads, from ScenarioResults.

Self-contained on purpose (inline CSS, inline SVG from scenarios.report_svg, no script): it is
opened from a CI artifact or a file:// URL, often offline. A summary per area, then one
<details> section per scenario, open when it did not pass.
"""

from __future__ import annotations

from collections import defaultdict
from html import escape
from pathlib import Path
from string import Template
from typing import Any

from scenarios import report_svg
from scenarios.reports import outcome
from scenarios.expectations import RunRecord
from scenarios.runner import ScenarioResult

OUTCOMES = ("passed", "failed", "known-gap", "skipped", "error")

_PAGE = Template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>quirkmail scenarios</title>
<style>
body{font-family:sans-serif;margin:1em 2em;color:#222} h2{margin-top:1.5em}
table{border-collapse:collapse} td,th{padding:2px 8px;text-align:left;vertical-align:top;border-bottom:1px solid #ddd}
td.n{text-align:right} .passed{color:#070} .failed,.error{color:#b00} .skipped,.known-gap{color:#a60}
details.scenario{border:1px solid #ccc;border-left-width:6px;border-radius:4px;margin:4px 0;padding:2px 8px}
details.is-passed{border-left-color:#070} details.is-failed,details.is-error{border-left-color:#b00}
details.is-skipped,details.is-known-gap{border-left-color:#a60} details.scenario>summary{cursor:pointer;font-weight:bold} pre{white-space:pre-wrap;margin:0}
svg.chart .bar{fill:#4a7bd0} svg.chart .wait{fill:#d08a2a} svg.chart .run{fill:#999}
svg.chart .bye{fill:#b00} svg.chart .reconnect{fill:#070} svg.chart .reconnect-failed{fill:#fff;stroke:#b00;stroke-width:2}
svg.chart text{font-size:9px} svg.chart line{stroke:#999} .mismatch{color:#b00}
</style></head>
<body><h1>quirkmail scenarios</h1><p id="caption">$caption</p>
<h2>Per area</h2>
<table id="areas"><tr><th>area</th>$outcome_heads<th>total</th></tr>
$areas
</table>
<h2>Scenarios</h2>
$sections
</body></html>
""")


def html_page(results: list[ScenarioResult], caption: str = "") -> str:
    ordered = sorted(results, key=lambda r: (r.area, r.name))
    return _PAGE.substitute(
        caption=escape(caption),
        outcome_heads="".join(f'<th class="{k}">{k}</th>' for k in OUTCOMES),
        areas="\n".join(_area_rows(ordered)),
        sections="\n".join(scenario_section(r) for r in ordered),
    )


def _area_rows(results: list[ScenarioResult]) -> list[str]:
    by_area: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    for r in results:
        by_area[r.area][outcome(r)] += 1
    return [f'<tr data-area="{escape(area)}"><td>{escape(area)}</td>'
            + "".join(f'<td class="n {k}" data-outcome="{k}">{n[k]}</td>' for k in OUTCOMES)
            + f'<td class="n">{sum(n.values())}</td></tr>'
            for area, n in by_area.items()]


def scenario_section(r: ScenarioResult) -> str:
    kind = outcome(r)
    parts = [f'<details class="scenario is-{kind}" id="{escape(r.area)}-{escape(r.name)}"'
             f'{"" if kind in ("passed", "skipped") else " open"}>',
             f'<summary><span class="{kind}">{kind}</span> {escape(r.area)}/{escape(r.name)} '
             f"({r.seconds:.1f} s)</summary>",
             f"<p>{escape(r.file)}</p>"]
    if r.error or r.skipped or r.known_gap:
        parts.append(f'<pre class="why">{escape(r.error or r.skipped or "known gap: " + str(r.known_gap))}</pre>')
    parts += _list("Failures", "failures", r.failures)
    parts.append(_runs_table(r))
    parts.append(_accounts_table(r))
    parts.append(_counts_table(r))
    parts.append(_kinds_table(r))
    reports = [run.report for run in r.runs if run.report]
    last = reports[-1] if reports else {}
    parts += _list("Skipped items", "skipped", [_skip_text(s) for s in last.get("skipped", [])]
                   + [f"folder {s['folder']}: {s['reason']}" for s in last.get("skipped_folders", [])])
    parts += _list("Date fallbacks", "date-fallbacks",
                   [f"{d['folder']} uid {d['uid']}: used {d['used']} {d.get('detail', '')}".rstrip()
                    for d in last.get("date_fallbacks", [])])
    parts.append(_dates(r))
    parts.append(_throttle(r))
    parts += _list("Notes", "notes", [n for rep in reports for n in rep.get("notes", [])])
    parts += _transcripts(r.transcripts)
    parts.append("</details>")
    return "\n".join(p for p in parts if p)


def _list(title: str, cls: str, items: list[str]) -> list[str]:
    if not items:
        return []
    return [f"<h4>{title} ({len(items)})</h4>",
            f'<ul class="{cls}">' + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"]


def _skip_text(s: dict[str, Any]) -> str:
    uid = f" uid {s['uid']}" if s.get("uid") is not None else ""
    detail = f": {s['detail']}" if s.get("detail") else ""
    return f"{s['folder']}{uid} {s.get('message_id') or ''} [{s['reason']}]{detail}".replace("  ", " ")


def _runs_table(r: ScenarioResult) -> str:
    if not r.runs:
        return ""
    rows = "".join(f"<tr><td>{run.run}</td><td class=\"n\">{run.exit_code}</td><td class=\"n\">"
                   f"{'-' if run.copied is None else run.copied}</td><td class=\"n\">{run.seconds:.1f}</td>"
                   f"<td>{escape(run.error)}</td></tr>" for run in r.runs)
    return ('<table class="runs"><tr><th>run</th><th>exit</th><th>copied</th><th>seconds</th><th>error</th></tr>'
            + rows + "</table>")


def _accounts_table(r: ScenarioResult) -> str:
    """A batch scenario: each account's outcome and verdict (its failures are in the list above)."""
    if not r.accounts:
        return ""
    rows = "".join(f'<tr><td>{escape(a.id)}</td><td class="{"passed" if a.passed else "failed"}">'
                   f'{"passed" if a.passed else "failed"}</td><td>{escape(a.outcome)}</td>'
                   f'<td class="n">{a.exit_code}</td><td class="n">{a.copied}</td>'
                   f'<td>{escape(a.verify.summary().splitlines()[-1]) if a.verify else ""}</td></tr>'
                   for a in r.accounts)
    caps = r.batch or {}
    peaks = ", ".join(f"{h}: {n}" for h, n in {**caps.get("peak_per_host", {}),
                                               **caps.get("peak_per_dest_host", {})}.items())
    return (f'<h4>Accounts ({len(r.accounts)}; peak accounts per server: {escape(peaks)})</h4>'
            '<table class="accounts"><tr><th>account</th><th>verdict</th><th>outcome</th><th>exit</th>'
            '<th>copied (last run)</th><th>verify</th></tr>' + rows + "</table>")


def _counts_table(r: ScenarioResult) -> str:
    """Source vs destination messages per folder, from the verifier (what is really there)."""
    if r.verify is None:
        return ""
    rows = []
    for f in r.verify.folders:
        dest = f.dest_count if f.destination_exists else "absent"
        cls = "" if f.identical else ' class="mismatch"'
        rows.append(f"<tr{cls}><td>{escape(f.source)}</td><td>{escape(f.destination)}</td>"
                    f'<td class="n">{f.source_count}</td><td class="n">{dest}</td></tr>')
    extra = "".join(f'<tr><td>-</td><td>{escape(e)}</td><td class="n">0</td>'
                    f'<td class="n">{r.verify.dest_counts.get(e, "?")}</td></tr>' for e in r.verify.extra_folders)
    return ('<h4>Messages per folder</h4><table class="counts"><tr><th>source folder</th><th>destination</th>'
            "<th>source</th><th>destination</th></tr>" + "".join(rows) + extra + "</table>")


def _kinds_table(r: ScenarioResult) -> str:
    """PIM: items per kind, as the engine counted them and as the PIM destination holds them."""
    kinds = [k for run in r.runs[-1:] for k in (run.report or {}).get("kinds", [])]
    held = (r.pim or {}).get("dest_counts", {})
    if not kinds and not held:
        return ""
    rows = "".join(f"<tr><td>{escape(k['kind'])}</td><td class=\"n\">{k['source']}</td><td class=\"n\">"
                   f"{k['copied']}</td><td class=\"n\">{k['already_present']}</td><td class=\"n\">{k['failed']}"
                   f"</td></tr>" for k in kinds)
    dest = "; ".join(f"{folder}: " + ", ".join(f"{n} {kind}" for kind, n in per.items()) for folder, per in held.items())
    return ('<h4>Items per kind</h4><table class="kinds"><tr><th>kind</th><th>source</th><th>copied</th>'
            "<th>already there</th><th>failed</th></tr>" + rows + "</table>"
            + (f"<p>PIM destination holds {escape(dest)}</p>" if dest else ""))


def _dates(r: ScenarioResult) -> str:
    """The verifier keeps only mismatches: chart them, or say how many dates were equal."""
    if r.verify is None:
        return ""
    offsets = [m.offset_seconds for f in r.verify.folders for m in f.date_mismatches if m.offset_seconds is not None]
    compared = sum(f.source_count - len(f.missing) for f in r.verify.folders)
    if not offsets:
        return f'<h4>Timestamp differences</h4><p class="dates-equal">all {compared} equal</p>'
    return (f"<h4>Timestamp differences: {len(offsets)} of {compared} dates differ (destination − source)</h4>"
            + report_svg.histogram(offsets, width=840))


def _throttle(r: ScenarioResult) -> str:
    lanes = []
    for run in r.runs:
        marks = _engine_events(run)
        if not any(m.kind == report_svg.WAIT for m in marks):  # an older EWS record: the runner's own timing
            marks += _ews_waits(run)
        if marks:
            lanes.append((f"run {run.run}", run.seconds, marks))
    reconnects = _reconnects(r)
    if not lanes and not reconnects:
        return ""
    timed = all(run.wait_at for run in r.runs if run.waits)
    text = "" if timed else "<p>(wait times not recorded: drawn back to back)</p>"
    return ("<h4>Throttling, backoff and reconnects</h4>" + (report_svg.timeline(lanes, width=840) if lanes else "")
            + text + "".join(f"<p>{escape(line)}</p>" for line in reconnects))


def _ews_waits(run: RunRecord) -> list[report_svg.Mark]:
    """EWS runs recorded before the engine timed its waits: the runner's RunRecord.waits."""
    waits = run.waits or []
    starts = run.wait_at or _end_to_end(waits)  # older records: no times, waits drawn back to back
    return [report_svg.Mark(report_svg.WAIT, at, w, f"waited {w:g} s at {at:g} s") for at, w in zip(starts, waits)]


def _engine_events(run: RunRecord) -> list[report_svg.Mark]:
    """The engine's timestamped events (MigrationReport.events; older reports have none)."""
    marks = []
    for e in (run.report or {}).get("events", []):
        who = f"{e.get('role') or 'server'}: {e.get('cause', '')}"
        if e["kind"] == "backoff":
            marks.append(report_svg.Mark(report_svg.WAIT, e["at"], e["seconds"],
                                         f"waited {e['seconds']:g} s at {e['at']:g} s, attempt {e['attempt']} ({who})"))
        elif e["kind"] == "bye":
            marks.append(report_svg.Mark(report_svg.BYE, e["at"], title=f"BYE at {e['at']:g} s ({who})"))
        elif e["kind"] == "reconnect":
            kind = report_svg.RECONNECT if e.get("outcome") == "resumed" else report_svg.RECONNECT_FAILED
            marks.append(report_svg.Mark(kind, e["at"], title=f"reconnect {e['attempt']} {e.get('outcome')} at "
                                                               f"{e['at']:g} s (lost: {who})"))
    return marks


def _end_to_end(waits: list[float]) -> list[float]:
    starts, t = [], 0.0
    for w in waits:
        starts.append(t)
        t += w
    return starts


def _reconnects(r: ScenarioResult) -> list[str]:
    """The engine records reconnects as counts (POP3) and notes, without times."""
    lines = []
    for run in r.runs:
        pop3 = (run.report or {}).get("pop3") or {}
        if pop3.get("reconnects") or pop3.get("destination_reconnects"):
            lines.append(f"run {run.run}: {pop3.get('reconnects', 0)} source reconnects, "
                         f"{pop3.get('destination_reconnects', 0)} destination reconnects")
        lines += [f"run {run.run}: {n}" for n in (run.report or {}).get("notes", []) if "reconnect" in n]
    return lines


def _transcripts(paths: list[str]) -> list[str]:
    if not paths:
        return []
    links = "".join(f'<li><a href="{escape(Path(p).as_uri() if Path(p).is_absolute() else p)}">{escape(p)}</a></li>'
                    for p in paths)
    return ["<h4>Protocol transcripts</h4>", f'<ul class="transcripts">{links}</ul>']
