"""report.html from real scenario runs: structure checked with lxml, and a look in headless Chromium."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from lxml import html as lxml_html

from scenarios import report_svg, reports
from scenarios.model import load_scenario
from scenarios.runner import ScenarioResult, run_scenario

LIBRARY = Path(__file__).resolve().parent.parent / "scenarios" / "library"


@pytest.fixture(scope="module")
def results() -> list[ScenarioResult]:
    skipping = run_scenario(load_scenario(LIBRARY / "quirks" / "8bit-headers.yaml"))
    # Failing by design: the internaldate mitigation off, so the destination stamps "now".
    stamped = load_scenario(LIBRARY / "quirks" / "bad-dates-into-simulator.yaml")
    stamped.migration.options["disable"] = ["internaldate"]
    failing = run_scenario(stamped)
    dates_kept = run_scenario(load_scenario(LIBRARY / "quirks" / "bad-dates-into-simulator.yaml"))
    dates_kept.name = "bad-dates-kept"
    return [skipping, failing, dates_kept]


@pytest.fixture(scope="module")
def page(results, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    reports.write_all(results, out)
    return out / reports.REPORT_HTML


def sections(doc) -> dict[str, object]:
    return {d.get("id"): d for d in doc.xpath('//details[contains(@class, "scenario")]')}


def test_area_summary_counts_each_outcome(results, page):
    assert [r.passed for r in results] == [True, False, True]
    doc = lxml_html.parse(str(page)).getroot()
    row = doc.xpath('//table[@id="areas"]//tr[@data-area="quirks"]')[0]
    counts = {td.get("data-outcome"): int(td.text) for td in row.xpath("td[@data-outcome]")}
    assert counts == {"passed": 2, "failed": 1, "known-gap": 0, "skipped": 0, "error": 0}


def test_failing_scenario_is_open_and_says_why(page):
    found = sections(lxml_html.parse(str(page)).getroot())
    failing = found["quirks-bad-dates-into-simulator"]
    assert failing.get("open") is not None
    assert found["quirks-8bit-headers"].get("open") is None  # passed: collapsed
    failures = failing.xpath('.//ul[@class="failures"]/li/text()')
    assert failures and "16 date mismatches" in failures[0]
    # per-folder counts from the verifier: source vs destination
    rows = [[td.text_content() for td in tr.xpath("td")] for tr in failing.xpath('.//table[@class="counts"]//tr[td]')]
    assert sum(int(r[2]) for r in rows) == 16 and all(r[2] == r[3] for r in rows)


def test_date_histogram_bars_hold_every_mismatch(results, page):
    failing = sections(lxml_html.parse(str(page)).getroot())["quirks-bad-dates-into-simulator"]
    bars = failing.xpath('.//*[local-name()="svg"][contains(@class, "histogram")]/*[local-name()="rect"]')
    assert len(bars) == len(report_svg.offset_bins()) == 14
    counts = [int(b.get("data-count")) for b in bars]
    assert sum(counts) == 16
    # The destination stamped the migration's "now": every copy is later than its source instant.
    assert sum(counts[:7]) == 0
    offsets = [m.offset_seconds for f in results[1].verify.folders for m in f.date_mismatches]
    assert all(o > 0 for o in offsets)


def test_equal_dates_are_said_not_charted(page):
    kept = sections(lxml_html.parse(str(page)).getroot())["quirks-bad-dates-kept"]
    assert kept.xpath('.//p[@class="dates-equal"]/text()') == ["all 16 equal"]
    assert not kept.xpath('.//*[local-name()="svg"]')


def test_skipped_items_carry_their_reasons(page):
    skipping = sections(lxml_html.parse(str(page)).getroot())["quirks-8bit-headers"]
    items = skipping.xpath('.//ul[@class="skipped"]/li/text()')
    assert len(items) == 2
    assert any("[8bit-headers]" in i and "non-ASCII characters in headers" in i for i in items)
    assert any("[nul-bytes]" in i and "NUL characters" in i for i in items)


@pytest.mark.peer  # Dovecot and Radicale destinations
def test_throttle_timeline_draws_each_wait_where_it_began():
    throttled = run_scenario(load_scenario(LIBRARY / "ews" / "throttled-disguised.yaml"))
    if throttled.skipped:
        pytest.skip(throttled.skipped)
    run = throttled.runs[0]
    assert run.waits and len(run.wait_at or []) == len(run.waits)
    # The engine's own timeline agrees with what the runner slept, and says why it waited.
    events = run.report["events"]
    assert [e["seconds"] for e in events] == run.waits and all(e["kind"] == "backoff" for e in events)
    assert all(e["role"] == "source" and e["cause"].startswith("UnauthorizedError") for e in events)  # a 401
    doc = lxml_html.fromstring(reports.html_page([throttled]))
    waits = doc.xpath('//*[local-name()="rect"][contains(@class, "bar wait")]')
    assert [float(w.get("data-seconds")) for w in waits] == run.waits
    xs = [float(w.get("x")) for w in waits]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)  # in the order slept, each at its own instant


def test_transcript_paths_become_links():
    # Nothing records transcripts yet (record/replay is not built): the field is filled by hand here.
    result = ScenarioResult(name="t", area="imap", file="imap/t.yaml", passed=True,
                            transcripts=["/tmp/t/run1.imap.log", "run2.imap.log"])
    doc = lxml_html.fromstring(reports.html_page([result]))
    assert doc.xpath('//ul[@class="transcripts"]/li/a/@href') == ["file:///tmp/t/run1.imap.log", "run2.imap.log"]


def png_facts(path: Path) -> tuple[int, int, int]:
    """Width, height (IHDR) and how many distinct byte values the image data holds (stdlib only).

    A blank page compresses to filter bytes and one colour: a handful of values. Text and charts,
    even after PNG's row filters, give dozens.
    """
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        header = chunk if kind == b"IHDR" else header
        idat += chunk if kind == b"IDAT" else b""
        pos += 12 + length
    width, height = struct.unpack(">II", header[:8])
    return width, height, len(set(zlib.decompress(idat)))


@pytest.mark.peer
def test_chromium_draws_the_page(page, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian package chromium)")
    shot = tmp_path / "report.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,2000",
         page.as_uri()],
        capture_output=True, timeout=120, check=True,
    )
    width, height, values = png_facts(shot)
    assert (width, height) == (1280, 2000)
    assert values > 16, f"the screenshot looks blank ({values} distinct byte values)"
