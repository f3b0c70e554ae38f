"""EWS migration benchmark: EWS simulator → Dovecot IMAP (mail) + Radicale (contacts, events, tasks, notes).

    python benchmarks/bench_ews.py [--messages 1200] [--contacts 300] [--events 250] [--tasks 150]
                                   [--notes 100] [--seed 1] [--connections 4] [--repeat 2]
                                   [--out reports/bench/ews.json]

The simulator (``exchange`` profile, ``nonmail-in-deleted-items``) serves a generated fixture of
2,000 mixed items from a separate process, so server and client each get a core. Our engine
(``migrator.engine.migrate`` with ``pim_dest``) copies everything into a fresh Dovecot user and a
fresh Radicale user; then the same run again (the re-run: nothing to copy). The peer figure is a
plain exchangelib read of the same items (folder tree, FindItem, GetItem with the same fields, no
writing): the ceiling any EWS client reaches against this server. Writes items/s for both.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import (  # noqa: E402
    ROOT, dovecot_with_users, populated, serve_world, simulator_process, timed, unavailable, use_storage, write_report,
)
from migrator.engine import MigrationOptions, migrate  # noqa: E402
from migrator.urls import Endpoint, Secret, ServerURL  # noqa: E402
from scenarios.peers.dovecot import DovecotServer  # noqa: E402
from scenarios.peers.radicale import RadicaleServer  # noqa: E402

USER = "bench@example.net"


def serve_ews(spec_json: str, password: str, ready, stop) -> None:
    """Child process: populate a store and serve it over EWS until ``stop`` is set."""
    from simulators.profiles import load_profile
    from simulators.quirks import QuirkSpec

    profile = load_profile("exchange").with_quirks([QuirkSpec(name="nonmail-in-deleted-items")])
    store, account = populated(USER, password, spec_json, profile)
    counts = {"mail": sum(len(f.messages) for f in account.folders.values())}
    for f in account.folders.values():
        for item in f.items:
            counts[item.kind.value] = counts.get(item.kind.value, 0) + 1
    serve_world(store, profile, lambda world: {"url": world.start_ews().url(USER), "counts": counts}, ready, stop)


def exchangelib_read(source: Endpoint) -> int:
    """The peer figure: read every item with exchangelib alone (same fields as the migration)."""
    from migrator.sources.ews import FIELDS, EwsSource, item_kind

    src = EwsSource(source, connections=1)
    n = 0
    try:
        for folder in src.folders():
            items = list(folder.folder.all().only("item_class", "size"))
            by_kind: dict[str, list] = {}
            for item in items:
                by_kind.setdefault(item_kind(item), []).append((item.id, item.changekey))
            for kind, ids in by_kind.items():
                for start in range(0, len(ids), 50):
                    n += len(list(src.account.fetch(ids[start:start + 50], only_fields=FIELDS[kind])))
    finally:
        src.close()
    return n


def main(argv: list[str] | None = None) -> int:
    from simulators.fixtures import FixtureSpec

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, default in (("messages", 1200), ("contacts", 300), ("events", 250), ("tasks", 150), ("notes", 100)):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2, help="runs; the best counts")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "ews.json")
    args = parser.parse_args(argv)
    if unavailable("bench_ews", DovecotServer, RadicaleServer):
        return 2
    use_storage("tmpfs")  # Dovecot's and Radicale's storage: measure the engines, not fsync
    spec = FixtureSpec(seed=args.seed, messages=args.messages, folders=6, contacts=args.contacts, events=args.events,
                       tasks=args.tasks, notes=args.notes, deleted_items_mixed=0)
    password = secrets.token_urlsafe(12)
    runs: list[dict] = []
    users = [f"ews{r}" for r in range(args.repeat)]
    with simulator_process(serve_ews, spec.model_dump_json(), password, ready_timeout=300) as child:
        sim = child.info
        total = sum(sim["counts"].values())
        source = Endpoint(ServerURL.parse(sim["url"]), Secret(password))
        peer_seconds, peer_items = timed(lambda: exchangelib_read(source))
        with (
            dovecot_with_users(users, password) as dovecot,
            RadicaleServer() as radicale,
            tempfile.TemporaryDirectory() as tmp,
        ):
            for user in users:
                radicale.add_user(user, password)
            for r, user in enumerate(users):
                dest = Endpoint(ServerURL.parse(dovecot.url(user)), Secret(password))
                pim = Endpoint(ServerURL.parse(radicale.url(user)), Secret(password))
                options = MigrationOptions(connections=args.connections, state_path=Path(tmp) / f"state{r}.sqlite")
                seconds, report = timed(lambda: migrate(source, dest, options, pim_dest=pim))
                rerun_seconds, rerun = timed(lambda: migrate(source, dest, options, pim_dest=pim))
                if report.copied != total or report.failed or rerun.copied:
                    print(f"bench_ews: copied {report.copied}/{total}, failed {report.failed}, re-run {rerun.copied}",
                          file=sys.stderr)
                    return 1
                runs.append({"seconds": round(seconds, 3), "rerun_seconds": round(rerun_seconds, 3),
                             "kinds": {k.kind: k.copied for k in report.kinds}})
    best = min(runs, key=lambda r: r["seconds"])
    result = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "fixture": spec.model_dump(mode="json", include={"seed", "messages", "contacts", "events", "tasks", "notes"}),
        "items": total,
        "counts": sim["counts"],
        "cpus": os.cpu_count(),
        "quirkmail": {"seconds": best["seconds"], "items_per_s": round(total / best["seconds"], 1),
                      "rerun_seconds": min(r["rerun_seconds"] for r in runs), "connections": args.connections,
                      "runs": runs},
        "exchangelib_read_only": {"seconds": round(peer_seconds, 3), "items": peer_items,
                                  "items_per_s": round(peer_items / peer_seconds, 1)},
    }
    write_report(args.out, result)
    q, p = result["quirkmail"], result["exchangelib_read_only"]
    print(f"{total} items {sim['counts']}, best of {args.repeat}")
    print(f"quirkmail (EWS → Dovecot + Radicale) {q['seconds']:7.2f} s  {q['items_per_s']:7.1f} items/s  "
          f"re-run {q['rerun_seconds']:.2f} s")
    print(f"exchangelib read only               {p['seconds']:7.2f} s  {p['items_per_s']:7.1f} items/s  → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
