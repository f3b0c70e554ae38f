"""IMAP migration benchmark: the quirkmail engine against ``doveadm backup`` (imapc), same data.

    python benchmarks/bench_imap.py [--messages 2000] [--folders 6] [--seed 1] [--connections 4]
                                    [--batch-size 200] [--repeat 3] [--storage tmpfs|disk]
                                    [--out reports/bench/imap.json]

A simulator (``generic`` profile) serves a generated fixture (``simulators.fixtures``) from a
separate process, so the server and the client each get a core. Two fresh users of one throwaway
Dovecot receive the same mailbox: one through our engine (``migrator.engine.migrate``), one through
``doveadm backup -R`` over imapc (Dovecot's own C migration engine, the reference). Each is then run
a second time on unchanged data (the incremental re-run). Both connect without TLS (loopback), so
neither pays for encryption. Prints a table and writes the JSON: messages, MB, seconds, msg/s, MB/s
for both engines, their ratio, and the re-run times. Needs root and Dovecot (see PEERS.md).

Each engine runs ``--repeat`` times into fresh users and the best run counts (other work on a
2-core machine makes single runs noisy; every run is kept in the JSON). ``--storage tmpfs`` (the
default) puts Dovecot's mail under /dev/shm: on disk Dovecot fsyncs every saved message, and that,
not the engines, then sets the pace (~250-350 msg/s for both here).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from migrator.engine import MigrationOptions, migrate  # noqa: E402
from migrator.urls import Endpoint, Secret, ServerURL  # noqa: E402
from scenarios.peers.dovecot import DovecotServer  # noqa: E402

USER = "bench"


def serve_simulator(spec_json: str, password: str, ready: mp.Queue, stop: mp.Event) -> None:
    """Child process: populate a store and serve it over IMAP until ``stop`` is set."""
    from simulators.fixtures import FixtureSpec, populate
    from simulators.launcher import SimulatorWorld
    from simulators.profiles import load_profile
    from simulators.store import Store

    profile = load_profile("generic")
    store = Store()
    account = store.add_account(USER, password)
    populate(account, FixtureSpec.model_validate_json(spec_json), profile)
    messages = sum(len(f.messages) for f in account.folders.values())
    nbytes = sum(m.size for _, m in account.iter_messages())
    with SimulatorWorld(store, profile) as world:
        handle = world.start_imap()
        ready.put({"port": handle.port, "messages": messages, "bytes": nbytes, "folders": len(account.folders)})
        stop.wait()


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The mailbox served and how the engine copies it (shared with bench_record.py)."""
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--folders", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--connections", type=int, default=4)


@contextmanager
def simulator_source(spec, password: str) -> Iterator[dict]:
    """``serve_simulator`` in a spawned process for the block; yields its port and counts."""
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    child = ctx.Process(target=serve_simulator, args=(spec.model_dump_json(), password, ready, stop), daemon=True)
    child.start()
    try:
        yield ready.get(timeout=120)
    finally:
        stop.set()
        child.join(timeout=10)


def wait_for_login(dovecot: DovecotServer, user: str, password: str) -> None:
    from imapclient import IMAPClient

    deadline = time.monotonic() + 5  # Dovecot re-reads its users file when the mtime second moves
    while True:
        try:
            with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=5) as c:
                c.login(user, password)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def figures(seconds: float, messages: int, nbytes: int) -> dict:
    return {
        "seconds": round(seconds, 3),
        "msg_per_s": round(messages / seconds, 1),
        "mb_per_s": round(nbytes / 1e6 / seconds, 2),
    }


def main(argv: list[str] | None = None) -> int:
    from simulators.fixtures import FixtureSpec

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine; the best counts")
    parser.add_argument("--storage", choices=("tmpfs", "disk"), default="tmpfs", help="where Dovecot keeps its mail")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "imap.json")
    args = parser.parse_args(argv)

    reason = DovecotServer.availability()
    if reason:
        print(f"bench_imap: Dovecot unavailable: {reason}", file=sys.stderr)
        return 2
    if args.storage == "tmpfs":
        tempfile.tempdir = "/dev/shm"  # DovecotServer makes its directory with tempfile.mkdtemp
    spec = FixtureSpec(seed=args.seed, messages=args.messages, folders=args.folders)
    sim_password, dv_password = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    runs: dict[str, list[dict]] = {"quirkmail": [], "doveadm_backup": []}
    with simulator_source(spec, sim_password) as sim:
        with DovecotServer() as dovecot, tempfile.TemporaryDirectory() as tmp:
            for r in range(args.repeat):
                for user in (f"ours{r}", f"doveadm{r}"):
                    dovecot.add_user(user, dv_password)
            wait_for_login(dovecot, f"doveadm{args.repeat - 1}", dv_password)
            source = Endpoint(ServerURL.parse(f"imap://{USER}@127.0.0.1:{sim['port']}?starttls=no"), Secret(sim_password))
            # doveadm wants the simulator's (throwaway, random) password in its options; it is not printed.
            imapc = ["-o", "imapc_host=127.0.0.1", "-o", f"imapc_port={sim['port']}", "-o", f"imapc_user={USER}",
                     "-o", f"imapc_password={sim_password}", "-o", "imapc_features=rfc822.size,fetch-headers"]
            for r in range(args.repeat):
                dest = Endpoint(ServerURL.parse(dovecot.url(f"ours{r}")), Secret(dv_password))
                options = MigrationOptions(
                    connections=args.connections, batch_size=args.batch_size, state_path=Path(tmp) / f"state{r}.sqlite"
                )
                seconds, report = timed(lambda: migrate(source, dest, options))
                rerun_seconds, rerun = timed(lambda: migrate(source, dest, options))
                if report.copied != sim["messages"] or rerun.copied != 0:
                    print(f"bench_imap: engine copied {report.copied}/{sim['messages']}, re-run {rerun.copied}", file=sys.stderr)
                    return 1
                runs["quirkmail"].append({"seconds": seconds, "rerun_seconds": rerun_seconds})
                backup = [*imapc, "backup", "-R", "-u", f"doveadm{r}", "imapc:"]
                seconds, _ = timed(lambda: dovecot.doveadm(*backup))
                rerun_seconds, _ = timed(lambda: dovecot.doveadm(*backup))
                counted = dovecot.doveadm("search", "-u", f"doveadm{r}", "ALL").stdout.count("\n")
                if counted != sim["messages"]:
                    print(f"bench_imap: doveadm stored {counted}/{sim['messages']}", file=sys.stderr)
                    return 1
                runs["doveadm_backup"].append({"seconds": seconds, "rerun_seconds": rerun_seconds})

    def best(name: str) -> dict:
        fastest = min(r["seconds"] for r in runs[name])
        return {
            **figures(fastest, sim["messages"], sim["bytes"]),
            "rerun_seconds": round(min(r["rerun_seconds"] for r in runs[name]), 3),
            "runs": [{k: round(v, 3) for k, v in r.items()} for r in runs[name]],
        }

    ours, theirs = best("quirkmail"), best("doveadm_backup")
    result = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "fixture": spec.model_dump(mode="json", include={"seed", "messages", "folders"}),
        "messages": sim["messages"],
        "folders": sim["folders"],
        "megabytes": round(sim["bytes"] / 1e6, 2),
        "dovecot_storage": args.storage,
        "cpus": os.cpu_count(),
        "quirkmail": {**ours, "connections": args.connections, "batch_size": args.batch_size},
        "doveadm_backup": theirs,
        "ratio_quirkmail_to_doveadm": round(theirs["seconds"] / ours["seconds"], 2),  # > 1: quirkmail is faster
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{result['messages']} messages, {result['folders']} folders, {result['megabytes']} MB, "
          f"Dovecot on {args.storage}, best of {args.repeat}")
    for name in ("quirkmail", "doveadm_backup"):
        r = result[name]
        print(f"{name:15} {r['seconds']:7.2f} s  {r['msg_per_s']:7.0f} msg/s  {r['mb_per_s']:6.2f} MB/s  re-run {r['rerun_seconds']:.2f} s")
    print(f"speed ratio quirkmail/doveadm: {result['ratio_quirkmail_to_doveadm']}  → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
