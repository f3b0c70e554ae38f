"""Batch load: 100 mailboxes from simulators into a real Dovecot with ``quirkmail migrate --batch``.

    python benchmarks/bench_batch.py [--accounts 100] [--hosts 4] [--messages 40] [--folders 4]
                                     [--per-host 8] [--accounts-parallel 16] [--connections 2]
                                     [--storage tmpfs|disk] [--out reports/bench/batch.json]

``--hosts`` IMAP simulators (``generic`` profile, each its own server = one "source host") serve
``--accounts`` mailboxes between them from a separate process; a throwaway Dovecot has one user
per mailbox. The batch runs as the real command (``python3 -m scenarios migrate --batch``) in its
own process, so its peak RSS (``getrusage`` via ``os.wait4``) is the engine's alone; Dovecot's
memory is sampled every 0.2 s as the summed PSS of its process group (the master, auth, logins,
one ``imap`` per connection). Every account is then verified over IMAP (``scenarios.verify``: same
bytes, flags and INTERNALDATE instant, each message once), and the batch is run once more with
``--again`` (every account re-checked, nothing copied: the delta-pass cost). Writes the JSON with
wall time, msg/s, MB/s, peak memory, the per-host peaks the scheduler recorded and the re-run.
Needs root and Dovecot (see PEERS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import (  # noqa: E402
    ROOT, add_storage_option, dovecot_with_users, simulator_process, unavailable, use_storage, write_report,
)
from migrator.urls import Endpoint, Secret, ServerURL  # noqa: E402
from scenarios.peers.dovecot import DovecotServer  # noqa: E402

SRC_ENV, DST_ENV = "QM_BENCH_SRC_PW", "QM_BENCH_DST_PW"  # the batch file names these, never the values


def serve_simulators(hosts: int, accounts: int, messages: int, folders: int, password: str, ready, stop) -> None:
    """Child process: ``hosts`` IMAP simulators sharing the accounts round-robin, until ``stop``."""
    from simulators.fixtures import FixtureSpec, populate
    from simulators.launcher import SimulatorWorld
    from simulators.profiles import load_profile
    from simulators.store import Store

    profile = load_profile("generic")
    stores = [Store() for _ in range(hosts)]
    listing = []
    for n in range(accounts):
        account = stores[n % hosts].add_account(f"user{n:03d}", password)
        populate(account, FixtureSpec(seed=n + 1, messages=messages, folders=folders), profile)
        listing.append({"user": account.username,
                        "host": n % hosts, "messages": sum(len(f.messages) for f in account.folders.values()),
                        "bytes": sum(m.size for _, m in account.iter_messages())})
    worlds = [SimulatorWorld(store, profile) for store in stores]
    try:
        ports = [w.start_imap().port for w in worlds]
        ready.put({"ports": ports, "accounts": listing})
        stop.wait()
    finally:
        for w in worlds:
            w.stop()


class GroupMemory:
    """Samples the summed PSS (RSS where PSS is unreadable) of one process group; keeps the peak."""

    def __init__(self, pgid: int, every: float = 0.2):
        self.pgid, self.every = pgid, every
        self.peak_kb = self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            total = count = 0
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    stat = Path(f"/proc/{pid}/stat").read_text()
                    if int(stat.rsplit(")", 1)[1].split()[2]) != self.pgid:  # field 5: pgrp
                        continue
                    total += _memory_kb(pid)
                    count += 1
                except (OSError, ValueError, IndexError):
                    continue  # the process ended meanwhile
            self.peak_kb, self.peak_processes = max(self.peak_kb, total), max(self.peak_processes, count)


def _memory_kb(pid: str) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        key = "Pss:"
    except OSError:
        text, key = Path(f"/proc/{pid}/status").read_text(), "VmRSS:"
    line = next((x for x in text.splitlines() if x.startswith(key)), None)
    return int(line.split()[1]) if line else 0  # a zombie has no memory lines


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a running process has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def run_batch_process(args: list[str], env: dict) -> tuple[float, int, int, float]:
    """Run ``quirkmail migrate --batch …`` in its own process: (seconds, exit code, peak RSS in KB,
    CPU seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "scenarios", "migrate", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != 0:
        print(err[-3000:], file=sys.stderr)
    return seconds, proc.returncode, usage.ru_maxrss, usage.ru_utime + usage.ru_stime  # ru_maxrss: KB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--hosts", type=int, default=4, help="source simulators (servers the per-host cap counts)")
    parser.add_argument("--messages", type=int, default=40, help="messages per mailbox")
    parser.add_argument("--folders", type=int, default=4)
    parser.add_argument("--per-host", type=int, default=8)
    parser.add_argument("--accounts-parallel", type=int, default=16)
    parser.add_argument("--connections", type=int, default=2, help="per account")
    add_storage_option(parser)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "batch.json")
    args = parser.parse_args(argv)

    if unavailable("bench_batch", DovecotServer):
        return 2
    use_storage(args.storage)
    src_pw, dst_pw = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    with simulator_process(serve_simulators, args.hosts, args.accounts, args.messages, args.folders, src_pw,
                           ready_timeout=600, join_timeout=20) as child:
        sims = child.info
        with (
            dovecot_with_users([a["user"] for a in sims["accounts"]], dst_pw) as dovecot,
            tempfile.TemporaryDirectory() as tmp,
        ):
            csv = Path(tmp) / "accounts.csv"
            lines = ["source,source_user,source_secret,dest,dest_user,dest_secret"]
            for a in sims["accounts"]:
                port = sims["ports"][a["host"]]
                lines.append(f"imap://127.0.0.1:{port}?starttls=no,{a['user']},env:{SRC_ENV},"
                             f"{dovecot.url(a['user'])},,env:{DST_ENV}")
            csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
            outdir = Path(tmp) / "out"
            batch_args = ["--batch", str(csv), "--outdir", str(outdir), "--per-host", str(args.per_host),
                          "--accounts-parallel", str(args.accounts_parallel), "--connections", str(args.connections)]
            env = {**os.environ, SRC_ENV: src_pw, DST_ENV: dst_pw, "PYTHONPATH": str(ROOT)}
            sim_cpu = cpu_seconds(child.process.pid)
            with GroupMemory(dovecot.pid) as dovecot_memory:
                seconds, code, rss_kb, cpu = run_batch_process(batch_args, env)
            sim_cpu = cpu_seconds(child.process.pid) - sim_cpu
            summary = json.loads((outdir / "summary.json").read_text())
            verify_started = time.perf_counter()
            identical = verify_all(sims, dovecot, src_pw, dst_pw)
            verify_seconds = time.perf_counter() - verify_started
            again_seconds, again_code, again_rss, _ = run_batch_process([*batch_args, "--again"], env)
            again = json.loads((outdir / "summary.json").read_text())

    messages = sum(a["messages"] for a in sims["accounts"])
    nbytes = sum(a["bytes"] for a in sims["accounts"])
    copied = sum(a["copied"] for a in summary["accounts"])
    result = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "accounts": args.accounts,
        "source_hosts": args.hosts,
        "messages_per_account": args.messages,
        "folders_per_account": args.folders,
        "messages": messages,
        "megabytes": round(nbytes / 1e6, 2),
        "dovecot_storage": args.storage,
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 1),  # other work on the machine while it ran
        "per_host": args.per_host,
        "accounts_parallel": args.accounts_parallel,
        "connections_per_account": args.connections,
        "exit_code": code,
        "outcomes": {k: sum(1 for a in summary["accounts"] if a["outcome"] == k) for k in {a["outcome"] for a in summary["accounts"]}},
        "copied": copied,
        "seconds": round(seconds, 3),  # the engine process, start-up included
        "batch_seconds": summary["seconds"],  # run_batch alone, as its summary says
        "msg_per_s": round(copied / seconds, 1),
        "mb_per_s": round(nbytes / 1e6 / seconds, 2),
        "engine_peak_rss_mb": round(rss_kb / 1024, 1),
        "engine_cpu_seconds": round(cpu, 1),  # user + system: how far from one core the engine ran
        "simulators_cpu_seconds": round(sim_cpu, 1),  # the one process serving every source (one reactor thread)
        "dovecot_peak_pss_mb": round(dovecot_memory.peak_kb / 1024, 1),
        "dovecot_peak_processes": dovecot_memory.peak_processes,
        "peak_per_host": summary["peak_per_host"],
        "peak_running": summary["peak_running"],
        "verified_identical": identical,
        "verify_seconds": round(verify_seconds, 1),
        "again": {"seconds": round(again_seconds, 3), "exit_code": again_code, "engine_peak_rss_mb": round(again_rss / 1024, 1),
                  "copied": sum(a["copied"] for a in again["accounts"]),
                  "already_present": sum(a["already_present"] for a in again["accounts"])},
    }
    write_report(args.out, result)
    print(f"{args.accounts} mailboxes × {args.messages} messages ({messages} messages, {result['megabytes']} MB) "
          f"from {args.hosts} simulators → Dovecot ({args.storage}); per-host {args.per_host}, "
          f"{args.accounts_parallel} accounts in parallel, {args.connections} connections each")
    print(f"batch: exit {code}, {copied} copied in {seconds:.1f} s ({summary['seconds']:.1f} s after start-up) "
          f"= {result['msg_per_s']:.0f} msg/s, "
          f"{result['mb_per_s']} MB/s; engine peak RSS {result['engine_peak_rss_mb']} MB, CPU {cpu:.1f} s "
          f"(simulators {sim_cpu:.1f} s), "
          f"Dovecot peak PSS {result['dovecot_peak_pss_mb']} MB over {dovecot_memory.peak_processes} processes")
    print(f"verified identical: {identical}/{args.accounts} ({verify_seconds:.1f} s); "
          f"--again re-run: {again_seconds:.1f} s, {result['again']['copied']} copied  → {args.out}")
    ok = code == 0 and copied == messages and identical == args.accounts and result["again"]["copied"] == 0
    return 0 if ok else 1


def verify_all(sims: dict, dovecot: DovecotServer, src_pw: str, dst_pw: str) -> int:
    """How many accounts' destinations are identical to their sources, read over IMAP."""
    from scenarios.verify import verify

    def one(a: dict) -> bool:
        port = sims["ports"][a["host"]]
        source = Endpoint(ServerURL.parse(f"imap://{a['user']}@127.0.0.1:{port}?starttls=no"), Secret(src_pw))
        dest = Endpoint(ServerURL.parse(dovecot.url(a["user"])), Secret(dst_pw))
        report = verify(source, dest)
        if not report.identical:
            print(f"bench_batch: {a['user']} differs:\n{report.summary()}", file=sys.stderr)
        return report.identical

    with ThreadPoolExecutor(4) as pool:
        return sum(pool.map(one, sims["accounts"]))


if __name__ == "__main__":
    sys.exit(main())
