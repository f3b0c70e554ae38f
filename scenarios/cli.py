"""The ``quirkmail`` console script: run / serve / migrate / verify / profiles / replay.

Exit codes are ``migrator.errors.ExitCode``: 0 all good, 1 scenarios failed or mailboxes differ,
2 usage or a bad file, 3 connection failure, 4 login refused. Passwords come from an environment
variable, a file or a prompt; never from argv, and they are never printed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

from migrator.errors import ExitCode, MigratorError
from scenarios.cli_replay import add_replay
from scenarios import cli_anonymise
from scenarios.model import ScenarioError

LIBRARY = Path(__file__).parent / "library"
RECORD_DEFAULT = Path("REPORT_DIR/transcripts")  # `run --record` without a folder (compared by identity)
MAX_AUTO_WORKERS = 2  # scenarios start servers; more workers than this only contend on 2 cores


FRONTS = ("imap", "pop3", "smtp", "ews")  # what `serve` can put in front of one store

def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return ExitCode.USAGE
    try:
        return int(args.handler(args))
    except (ScenarioError, MigratorError) as exc:
        print(f"quirkmail: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", ExitCode.USAGE))
    except KeyboardInterrupt:
        return ExitCode.ABORTED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quirkmail",
        description="Reproduce mailbox-migration failures on one machine: provider simulators, "
        "a migration engine and scenario verification.",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_run(sub)
    _add_serve(sub)
    _add_migrate(sub)
    _add_verify(sub)
    _add_profiles(sub)
    add_replay(sub)
    cli_anonymise.add(sub)
    return parser


# run --------------------------------------------------------------------------------------------


def _add_run(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run scenario files (default: the whole library) and write reports",
        description="Run scenarios with everything in-process on loopback; print a summary table; "
        "write report.json and junit.xml. Exit 0 only when no scenario failed.",
    )
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH", help=f"scenario files or folders (default: {LIBRARY})")
    p.add_argument("-n", "--workers", default="auto", help=f"parallel workers, or 'auto' (= CPUs, at most {MAX_AUTO_WORKERS})")
    p.add_argument("--report-dir", type=Path, default=Path("reports/latest"), help="where reports go (default: %(default)s)")
    p.add_argument("-k", dest="keyword", metavar="EXPR", help="only scenarios whose area/name match (pytest -k syntax)")
    p.add_argument("--record", nargs="?", const=RECORD_DEFAULT, type=Path, metavar="DIR",
                   help="record the engine's protocol sessions as transcripts, per scenario in DIR/<area>/<file>/ "
                   "(without DIR: REPORT_DIR/transcripts); report.html links them")
    p.set_defaults(handler=cmd_run)


def _record_dir(args: argparse.Namespace) -> Path | None:
    """Where ``run --record`` puts the transcripts (None: not recording)."""
    if args.record is None:
        return None
    record_dir = args.report_dir / "transcripts" if args.record is RECORD_DEFAULT else args.record
    if record_dir.is_file() or any(record_dir.glob("**/*.y*ml")):
        # `run --record scenarios/…` took the scenarios for the folder (its value is optional)
        raise ScenarioError(record_dir, "--record", "that holds scenario files, not transcripts; put --record "
                            "after the scenario paths, or name its folder as --record=DIR")
    return record_dir


def _workers(value: str) -> int:
    if value == "auto":
        return max(1, min(MAX_AUTO_WORKERS, os.cpu_count() or 1))
    try:
        return max(1, int(value))
    except ValueError:
        raise ScenarioError("-n", "", f"workers must be a number or 'auto', not {value!r}") from None


def cmd_run(args: argparse.Namespace) -> int:
    import pytest
    from rich.console import Console

    from scenarios import reports

    paths = [str(p) for p in (args.paths or [LIBRARY])]
    for p in paths:
        if not Path(p).exists():
            print(f"quirkmail run: no such file or folder: {p}", file=sys.stderr)
            return ExitCode.USAGE
    record_dir = _record_dir(args)
    checked = check_files(paths)  # a bad file is a usage error before any server starts
    if checked:
        return checked
    report_json = args.report_dir / reports.REPORT_JSON
    report_json.unlink(missing_ok=True)  # a stale report must not pass for this run's
    pytest_args = [
        *paths,
        "-p", "scenarios.plugin",
        "-p", "no:cacheprovider",
        "-p", "no:benchmark",  # where pytest-benchmark is installed, its xdist warning is noise here
        "--scenario-report-dir", str(args.report_dir),
        "-o", "addopts=",
        "-q",
        "--disable-warnings",
    ]
    if record_dir is not None:
        pytest_args += ["--scenario-record-dir", str(record_dir)]
    workers = _workers(args.workers)
    if workers > 1:
        pytest_args += ["-n", str(workers)]
    if args.keyword:
        if problem := _bad_keyword(args.keyword):
            print(f"quirkmail run: -k {args.keyword!r}: {problem} (pytest -k syntax: 'merge or gmail and not dedup')",
                  file=sys.stderr)
            return ExitCode.USAGE
        pytest_args += ["-k", args.keyword]
    # xdist workers are new interpreters: they must import this package even when not installed.
    root = str(Path(__file__).resolve().parents[1])
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    started = time.monotonic()
    code = pytest.main(pytest_args)
    wall = time.monotonic() - started
    results = reports.read_json(report_json) if report_json.exists() else []
    if not results or code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.NO_TESTS_COLLECTED):
        print("quirkmail run: no scenarios ran", file=sys.stderr)
        return ExitCode.USAGE
    Console().print(reports.summary_table(results))
    print(f"wall time {wall:.1f} s on {workers} worker{'s' if workers > 1 else ''}")
    print(f"reports: {report_json}, {args.report_dir / reports.JUNIT_XML}, {args.report_dir / reports.REPORT_HTML}")
    if record_dir is not None:
        print(f"transcripts: {record_dir} (one folder per scenario, linked from report.html)")
    t = reports.totals(results)
    return ExitCode.OK if t["failed"] == t["error"] == 0 else ExitCode.ITEMS_SKIPPED


def _bad_keyword(expression: str) -> str | None:
    # An invalid -k expression crashes every xdist worker with an INTERNALERROR: refuse it here.
    from _pytest.mark.expression import Expression

    try:
        Expression.compile(expression)
    except SyntaxError as exc:
        return str(exc.msg)
    return None


def check_files(paths: list[str]) -> int:
    """Validate every scenario file under ``paths``; print each problem; ExitCode.USAGE if any."""
    from scenarios.model import load_scenario
    from scenarios.runner import engine_options

    files = [Path(p) for p in paths if Path(p).is_file()]
    files += [f for p in paths if Path(p).is_dir() for f in sorted(Path(p).rglob("*.y*ml"))]
    bad = 0
    for file in files:
        try:
            engine_options(load_scenario(file))
        except ScenarioError as exc:
            print(f"quirkmail run: {exc}", file=sys.stderr)
            bad += 1
    if not files:
        print(f"quirkmail run: no scenario files under {', '.join(paths)}", file=sys.stderr)
    return ExitCode.USAGE if bad or not files else ExitCode.OK


# serve ------------------------------------------------------------------------------------------


def _add_serve(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="start a simulated provider in the foreground (Ctrl-C stops)",
        description="Serve a simulated mailbox for hands-on reproduction: a provider profile, "
        "optional quirks and a generated or file-based fixture, on 127.0.0.1.",
    )
    p.add_argument("--profile", required=True, help="built-in profile name (see `quirkmail profiles`) or a profile file")
    fixture = p.add_mutually_exclusive_group()
    fixture.add_argument("--fixture", metavar="SPEC", help="generated mail, e.g. seed=3,messages=40,folders=6")
    fixture.add_argument("--fixture-file", type=Path, metavar="FILE", help="a YAML fixture block (paths relative to it)")
    p.add_argument("--user", default="user", help="account name (default: %(default)s)")
    p.add_argument("--password-env", metavar="VAR", help="environment variable holding the password "
                   "(default: a random one, written to a file whose path is printed)")
    p.add_argument("--quirk", action="append", default=[], metavar="NAME:K=V,...", help="add a quirk (repeatable)")
    p.add_argument("--fault", action="append", default=[], metavar="NAME:K=V,...",
                   help="add a transport fault to the IMAP and POP3 fronts, e.g. bye-mid-fetch:after_bytes=50000 "
                   "(repeatable; see simulators/faults.py)")
    p.add_argument("--fronts", default=",".join(FRONTS), metavar="LIST",
                   help="which fronts to serve the one store through, comma-separated from "
                   f"{', '.join(FRONTS)} (default: all)")
    p.add_argument("--port", type=int, default=0, help="IMAP port (default: a free one)")
    p.add_argument("--pop3-port", type=int, default=0, help="POP3 port (default: a free one)")
    p.add_argument("--smtp-port", type=int, default=0, help="SMTP port (default: a free one)")
    p.add_argument("--ews-port", type=int, default=0, help="EWS port (default: a free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s; 0.0.0.0 inside a container, see --docker)")
    p.add_argument("--store-dir", type=Path, metavar="DIR",
                   help="keep the mailboxes in DIR (SQLite, each change committed atomically): a restarted or "
                   "killed server comes back with the same messages, UIDs, UIDVALIDITY, dates and flags "
                   "(the fixture is only generated when DIR is new)")
    p.add_argument("--record", type=Path, metavar="DIR",
                   help="record the simulator's side of every IMAP, POP3, SMTP and EWS connection as a "
                   "transcript in DIR")
    p.add_argument("--implicit-tls", action="store_true",
                   help="TLS from the first byte (imaps://, pop3s://, https for EWS) instead of STARTTLS/STLS")
    p.add_argument("--docker", action="store_true",
                   help="run docker/compose.yaml's world in containers instead: the simulators with this profile "
                   "and fixture, plus a real Dovecot and Radicale as destinations (starts dockerd and builds the "
                   "image when needed; the same password for the simulated account and the Dovecot user)")
    p.set_defaults(handler=cmd_serve)


def _fixture_spec(args: argparse.Namespace):
    import yaml

    from simulators.fixtures import FixtureSpec
    from simulators.quirks import QuirkSpec

    if args.fixture_file:
        try:
            data = yaml.safe_load(args.fixture_file.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ScenarioError(args.fixture_file, "", f"cannot read fixture: {exc}") from None
        return _validated(FixtureSpec, data, args.fixture_file), args.fixture_file.parent
    if args.fixture:
        # "seed=3,messages=40" is the quirk parameter syntax: reuse its parser.
        params = QuirkSpec.parse(f"fixture:{args.fixture}").params
        return _validated(FixtureSpec, params, "--fixture"), Path.cwd()
    return None, Path.cwd()


def _validated(model, data, where):
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ScenarioError(where, ".".join(map(str, first["loc"])), first["msg"]) from None


def cmd_serve(args: argparse.Namespace) -> int:
    from migrator.urls import resolve_secret
    from simulators.profiles import ProfileError, load_profile
    from simulators.faults import FaultPlan, FaultSpec
    from simulators.quirks import QuirkError, QuirkSpec, build_all

    try:
        profile = load_profile(args.profile)
        if args.quirk:
            profile = profile.with_quirks([QuirkSpec.parse(q) for q in args.quirk])
        if args.fault:
            profile = profile.with_faults([FaultSpec.parse(f) for f in args.fault])
            FaultPlan(profile.faults, clock=None)  # unknown names and bad parameters: a usage error now
        fronts = _fronts(args.fronts)
        for front in fronts:
            build_all(profile.quirks, front)  # unknown names and bad parameters: a usage error now
    except (ProfileError, QuirkError, ValueError) as exc:
        print(f"quirkmail serve: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    spec, base_dir = _fixture_spec(args)
    password_file = None
    if args.password_env:
        password = resolve_secret(env=args.password_env).reveal()
        password_note = f"password: from ${args.password_env}"
    else:
        password = secrets.token_urlsafe(12)
        password_file = _write_private(password)
        password_note = f"password file: {password_file} (removed when the server stops)"
    try:
        if args.docker:
            from scenarios.docker_world.serve import serve_docker

            return serve_docker(args, password, password_note, wait=_wait_for_ctrl_c)
        return _serve(args, profile, fronts, spec, base_dir, password, password_note)
    finally:
        if password_file is not None:
            password_file.unlink(missing_ok=True)


def _fronts(text: str) -> list[str]:
    fronts = [f.strip().lower() for f in text.split(",") if f.strip()]
    unknown = sorted(set(fronts) - set(FRONTS))
    if unknown or not fronts:
        raise ValueError(f"--fronts: unknown {', '.join(unknown) or '(none given)'} (choose from {', '.join(FRONTS)})")
    return fronts


def _start_front(world, front: str, args):
    """Start one front of the world on the port the user asked for (0: a free one); its handle."""
    if front == "imap":
        return world.start_imap(args.port, implicit_tls=args.implicit_tls)
    if front == "pop3":
        return world.start_pop3(args.pop3_port, implicit_tls=args.implicit_tls)
    if front == "ews":
        return world.start_ews(args.ews_port, tls=args.implicit_tls)
    return world.start_smtp(args.smtp_port)


def _serve(args, profile, fronts: list[str], spec, base_dir: Path, password: str, password_note: str) -> int:
    from simulators.fixtures import populate
    from simulators.launcher import SimulatorWorld
    from simulators.persist import StorePersistence
    from simulators.store import Store

    store = Store()
    persisted = None
    if args.store_dir and StorePersistence.exists(args.store_dir):  # a restart: the mailboxes as they were
        persisted = StorePersistence(store, args.store_dir)
    account = store.accounts.get(args.user)
    if account is None:
        account = store.add_account(args.user, password)
        if spec is not None:
            populate(account, spec, profile, base_dir=base_dir)
    else:
        account.password = password  # this start's password, whatever the last one's was
    if args.store_dir:
        persisted = persisted or StorePersistence(store, args.store_dir)  # a first start: saves the fixture
        persisted.save(account)
    recorder = None
    if args.record:
        from transcripts.tap import Recorder

        recorder = Recorder(args.record)
    with SimulatorWorld(store, profile, host=args.host) as world:
        if recorder is not None:
            world.record(recorder.labelled("simulator"))
        handles = [_start_front(world, front, args) for front in fronts]
        messages = sum(len(f.messages) for f in account.folders.values())
        items = sum(len(f.items) for f in account.folders.values())
        print(f"profile {profile.name}: {len(account.folders)} folders, {messages} messages, {items} other items")
        for handle in handles:
            print(f"{handle.protocol + ':':6} {handle.url(args.user)}")
        print(f"cafile: {world.cafile}")
        if persisted is not None:
            print(f"store: {persisted.path} (every change is written before it is acknowledged)")
        if recorder is not None:
            print(f"transcripts: {recorder.directory} (IMAP, POP3, SMTP and EWS sessions, passwords masked)")
        print(password_note)
        _wait_for_ctrl_c("Ctrl-C stops")
    if recorder is not None:
        recorder.close()
    return ExitCode.OK


def _wait_for_ctrl_c(note: str) -> None:
    print(note, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopping")


def _write_private(secret: str) -> Path:
    fd, name = tempfile.mkstemp(prefix="quirkmail-serve-", suffix=".password")
    with os.fdopen(fd, "w") as f:  # mkstemp makes it 0600: only this user can read it
        f.write(secret + "\n")
    return Path(name)


# migrate ----------------------------------------------------------------------------------------


def _add_migrate(sub) -> None:
    p = sub.add_parser(
        "migrate",
        help="copy a mailbox from one server to another with the quirkmail engine",
        description="Run the migration engine against any IMAP servers, or for every account pair of a "
        "file with --batch FILE (exit code: the worst account's).",
    )
    try:
        from migrator.cli import add_migrate_arguments, run_migrate
    except ModuleNotFoundError as exc:
        if exc.name != "migrator.cli":
            raise
        p.set_defaults(handler=lambda _: _engine_missing())
        return
    add_migrate_arguments(p)
    p.set_defaults(handler=run_migrate)


def _engine_missing() -> int:
    print("quirkmail migrate: the migration engine (migrator.cli) is not installed", file=sys.stderr)
    return ExitCode.USAGE


# verify -----------------------------------------------------------------------------------------


def _add_verify(sub) -> None:
    p = sub.add_parser(
        "verify",
        help="compare two mailboxes over IMAP (exit 0 when identical)",
        description="Check that every source message is at the destination exactly once with the "
        "same bytes, flags and INTERNALDATE instant, whichever tool migrated it.",
    )
    from migrator.cli import add_endpoint_arguments

    add_endpoint_arguments(p, "source", "source")
    add_endpoint_arguments(p, "dest", "dest", label="destination")
    p.add_argument("--target-root", default="", metavar="A/B", help="the source was migrated below this folder")
    p.add_argument("--include", action="append", default=[], metavar="GLOB", help="only source folders matching (repeatable)")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip source folders matching (repeatable)")
    p.add_argument("--no-special-use", action="store_true", help="do not map special folders by role (\\Sent → Sent Items)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    p.set_defaults(handler=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    from migrator.cli import endpoint_from_args
    from scenarios.snapshot import SnapshotError, SnapshotLoginError
    from scenarios.verify import VerifyScope, verify

    scope = VerifyScope(
        target_root=[p for p in args.target_root.split("/") if p],
        include=args.include,
        exclude=args.exclude,
        map_special_use=not args.no_special_use,
    )
    try:
        report = verify(endpoint_from_args(args, "source"), endpoint_from_args(args, "dest"), scope)
    except SnapshotLoginError as exc:
        print(f"quirkmail verify: {exc}", file=sys.stderr)
        return ExitCode.AUTHENTICATION
    except SnapshotError as exc:
        print(f"quirkmail verify: {exc}", file=sys.stderr)
        return ExitCode.CONNECTION
    print(report.model_dump_json(indent=2) if args.json else report.summary())
    return ExitCode.OK if report.identical else ExitCode.ITEMS_SKIPPED


# profiles ---------------------------------------------------------------------------------------


def _add_profiles(sub) -> None:
    p = sub.add_parser(
        "profiles",
        help="list the built-in provider profiles with their quirks",
        description="List built-in provider profiles: description, delimiter, namespace prefix and quirks.",
    )
    p.set_defaults(handler=cmd_profiles)


def cmd_profiles(args: argparse.Namespace) -> int:
    from simulators.profiles import load_profile, profile_names
    from simulators.quirks import QuirkError, build

    for name in profile_names():
        profile = load_profile(name)
        description = " ".join(profile.description.split())
        prefix = profile.imap.namespace_prefix or '""'
        print(f"{name}: {description}")
        print(f"    delimiter {profile.imap.delimiter!r}, namespace prefix {prefix}")
        for quirk in profile.quirks:
            params = ",".join(f"{k}={v}" for k, v in quirk.params.items())
            try:
                summary = f" — {type(build(quirk)).summary()}"
            except QuirkError as exc:  # a profile naming a quirk no front implements yet
                summary = f" — ({exc})"
            print(f"    quirk {quirk.name}{':' + params if params else ''}{summary}")
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
