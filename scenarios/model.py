"""The scenario file: which worlds, which migration, and what must be true afterwards.

A scenario is YAML that reads like a transcript of a support case::

    name: delimiter-translation          # optional; defaults to the file stem
    description: Courier-style INBOX. prefix and "." delimiter into Dovecot's "/"
    source:      {server: simulator, profile: courier, fixture: {seed: 3, messages: 40, folders: 6}}
    destination: {server: dovecot}
    migration:
      engine: quirkmail                  # or command: ["doveadm", ...] with {placeholders}
      options: {mode: merge, target_root: []}
      runs: 1
    expect:
      exit_code: 0
      identical: true

Every block forbids unknown keys, so a typo is an error that names the file and the field path
(``ScenarioError``), never a silently ignored expectation. New servers (pop3, ews), new blocks
and new expectations are added as new optional fields.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from scenarios.pop3_expect import LiveExpectations, Pop3Expectations
from scenarios.model_batch import BatchSpec
from scenarios.model_collab import CollabExpectations, PimDestinationSpec
from simulators.fixtures import FixtureSpec
from simulators.quirks import QuirkSpec, build
from simulators.traffic import TrafficSpec

PLACEHOLDERS = frozenset(
    {
        "source_host",
        "source_port",
        "source_user",
        "source_password",
        "dest_host",
        "dest_port",
        "dest_user",
        "dest_password",
        "dovecot_config",
    }
)


class ScenarioError(ValueError):
    """A scenario file that cannot be read or does not validate; names the file and the field."""

    def __init__(self, file: Path | str, field: str, problem: str):
        self.file = Path(file)
        self.field = field
        self.problem = problem
        where = f"{self.file}: {field}" if field else str(self.file)
        super().__init__(f"{where}: {problem}")


class FieldProblem(ValueError):
    """Raised by a cross-field check: names the field (relative to its block) it is about."""

    def __init__(self, field: str, problem: str):
        super().__init__(problem)
        self.field = field
        self.problem = problem


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSpec(_Block):
    """One side of the migration: a simulator with a provider profile, or a real Dovecot."""

    server: Literal["simulator", "dovecot"]
    # imap; a source may be pop3 (the inbox only); a destination may take delivery (lmtp: Dovecot's,
    # smtp: the simulator's front) from a pop3 source (scenarios.sides_pop3).
    protocol: Literal["imap", "pop3", "lmtp", "smtp", "ews"] = "imap"  # ews: a source (scenarios.sides_ews)
    profile: str = "generic"  # simulator only: a built-in profile name or a profile file path
    # Simulator only: the account name (generated mail is addressed to it). A Dovecot side always
    # gets a fresh user of the shared server.
    user: str = "alice"
    quirks: list[QuirkSpec] = []  # added to the profile's; "name:k=v,k=v" or {name, params}
    faults: list[QuirkSpec] = []  # transport faults (simulators.faults) added to the profile's, same syntax
    # The mail this side holds before the migration; real files are relative to the scenario file.
    fixture: FixtureSpec | None = None
    # The engine is given a wrong password (refused-login scenarios: exit 4, classified).
    wrong_password: bool = False
    # Simulator only (scenarios.credentials): xoauth2 = the engine logs in with XOAUTH2, its token
    # (the account's password) in a file it re-reads at every connect; rotate_token = a refresher
    # writes a new token to that file when the oauth-token-expiry quirk has no login left for it.
    auth: Literal["password", "xoauth2"] = "password"
    rotate_token: bool = False

    @field_validator("quirks", "faults", mode="before")
    @classmethod
    def _parse_quirk_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [QuirkSpec.parse(v) if isinstance(v, str) else v for v in value]
        return value

    @field_validator("quirks")
    @classmethod
    def _quirks_exist(cls, value: list[QuirkSpec]) -> list[QuirkSpec]:
        for spec in value:
            build(spec)  # QuirkError (a ValueError) names the quirk and the bad parameter
        return value

    @field_validator("faults")
    @classmethod
    def _faults_exist(cls, value: list[QuirkSpec]) -> list[QuirkSpec]:
        from simulators.faults import FaultPlan

        FaultPlan(value, clock=None)  # FaultError (a ValueError) names the fault and the bad parameter
        return value

    @model_validator(mode="after")
    def _dovecot_has_no_profile(self) -> ServerSpec:
        if self.server == "dovecot" and (self.profile != "generic" or self.quirks or self.faults):
            raise FieldProblem("profile", "a dovecot server has no profile or quirks: it is the real thing")
        if self.server == "dovecot" and "user" in self.model_fields_set:
            raise FieldProblem("user", "a dovecot side gets a fresh user per scenario; it cannot be named")
        if self.server == "dovecot" and self.auth != "password":
            raise FieldProblem("auth", "the shared Dovecot has no OAuth: auth: xoauth2 is for simulator sides")
        if self.rotate_token and self.auth != "xoauth2":
            raise FieldProblem("rotate_token", "rotates an OAuth token file: needs auth: xoauth2")
        return self


class MigrationSpec(_Block):
    engine: Literal["quirkmail"] | None = None
    # An external engine: argv with {placeholders} (see PLACEHOLDERS); judged by the same verifier.
    command: list[str] | None = None
    # migrator.engine.MigrationOptions fields; validated by the engine's own model when it runs.
    options: dict[str, Any] = {}
    runs: int = Field(1, ge=1)
    # Mail that lands at the source before each run after the first (the cut-over delta: MX
    # records still point at the old server). Generated like a fixture; use a seed of its own.
    new_mail_between_runs: FixtureSpec | None = None
    # Mail arriving over SMTP at the source WHILE run 1 goes on ({seed, messages, interval});
    # later runs start once it is all sent (scenarios.live). Simulator sources only.
    live_traffic: TrafficSpec | None = None
    timeout: float = Field(300.0, gt=0)  # seconds per run of an external command

    @model_validator(mode="after")
    def _one_engine(self) -> MigrationSpec:
        if self.command is not None and self.engine is not None:
            raise FieldProblem("command", "give either engine or command, not both")
        if self.command is None:
            self.engine = "quirkmail"
        else:
            if not self.command:
                raise FieldProblem("command", "command is empty")
            if self.options:
                raise FieldProblem("options", "options are for the quirkmail engine; an external command takes its own arguments")
            for arg in self.command:
                unknown = {f for _, f, _, _ in string.Formatter().parse(arg) if f} - PLACEHOLDERS
                if unknown:
                    raise FieldProblem(
                        "command",
                        f"command argument {arg!r}: unknown placeholder(s) {sorted(unknown)} "
                        f"(known: {', '.join(sorted(PLACEHOLDERS))})"
                    )
        return self


class SkipExpectation(_Block):
    reason: str  # the engine's stable code, e.g. "too-large"
    count: int = Field(ge=0)
    folder: str | None = None  # source folder path joined with "/"; None = any


class Expectations(_Block):
    """What must be true after the last run (lists speak of each run in order)."""

    exit_code: int | list[int] = 0
    # Destination message counts by folder path joined with "/"; None = no count check.
    folders: dict[str, int] | None = None
    absent: list[str] = []  # destination folders that must not exist (excluded, not created)
    # Every (selected) source message once at the destination: bytes, flags, INTERNALDATE instant.
    # None = true unless the scenario states counts or missing messages instead.
    identical: bool | None = None
    missing: int | None = None  # source messages not found at the destination
    duplicated: int | None = None  # extra copies of source messages at the destination
    unexpected: int | None = None  # destination messages that are no source message
    copied_per_run: list[int] | None = None
    skipped: list[SkipExpectation] | None = None
    # Phrases each found in some run's report: its notes, a folder's notes or why it stopped.
    notes: list[str] = []
    # The source holds exactly what it held before (no \\Seen set by a careless FETCH, nothing moved).
    source_unchanged: bool = True
    date_fallbacks: int | None = None  # the engine resorted to Received/Date this many times
    # A substring of what ended the last run: its error, else its report's refused login / abort.
    error: str | None = None
    # Contacts/events/tasks/notes and EWS report checks (scenarios.model_collab).
    collab: CollabExpectations | None = None
    pop3: Pop3Expectations | None = None  # a POP3 run's report and the source left behind
    live: LiveExpectations | None = None  # the mail of migration.live_traffic at the destination

    def wants_identical(self) -> bool:
        if self.identical is not None:
            return self.identical
        return self.folders is None and self.missing is None


class Scenario(_Block):
    name: str = ""
    description: str = ""
    source: ServerSpec
    destination: ServerSpec = ServerSpec(server="dovecot")
    # Where contacts, calendars, tasks and notes go (an EWS source); mail goes to destination.
    pim_destination: PimDestinationSpec | None = None
    migration: MigrationSpec = MigrationSpec()
    # Several accounts on the same providers, migrated as one batch (scenarios.model_batch).
    batch: BatchSpec | None = None
    expect: Expectations = Expectations()
    # A behaviour we want that quirkmail does not have yet, in a sentence. The scenario still runs:
    # failing, it is reported as a known gap (not a failure); passing, it fails until the line goes.
    known_gap: str | None = None
    # Set by load_scenario, not by the file.
    file: Path | None = Field(None, exclude=True)

    @property
    def area(self) -> str:
        """The library folder the file sits in (imap, pop3, quirks ...)."""
        return self.file.parent.name if self.file else ""

    @property
    def needs_dovecot(self) -> bool:
        external = self.migration.command is not None  # the reference engine is doveadm
        return external or "dovecot" in (self.source.server, self.destination.server)

    @model_validator(mode="after")
    def _per_run_lists_fit(self) -> Scenario:
        runs = self.migration.runs
        for field in ("exit_code", "copied_per_run"):
            value = getattr(self.expect, field)
            if isinstance(value, list) and len(value) != runs:
                raise FieldProblem(f"expect.{field}", f"lists {len(value)} runs but migration.runs is {runs}")
        if self.migration.command is not None:
            for field in ("copied_per_run", "skipped", "date_fallbacks"):
                if getattr(self.expect, field) is not None:
                    raise FieldProblem(f"expect.{field}", "needs the quirkmail engine's report; an external command has none")
        return self

    @model_validator(mode="after")
    def _pop3_roles_fit(self) -> Scenario:
        src, dst = self.source, self.destination
        if src.protocol in ("lmtp", "smtp"):
            raise FieldProblem("source.protocol", f"{src.protocol} only delivers: it can be a destination, not a source")
        if dst.protocol == "pop3":
            raise FieldProblem("destination.protocol", "pop3 only reads: it can be a source, not a destination")
        if dst.protocol in ("lmtp", "smtp") and src.protocol != "pop3":
            raise FieldProblem("destination.protocol", f"{dst.protocol} delivery takes a pop3 source")
        wants = {"lmtp": "dovecot", "smtp": "simulator"}.get(dst.protocol)
        if wants and dst.server != wants:
            raise FieldProblem("destination.server", f"{dst.protocol} delivery is {wants}'s here")
        if self.migration.live_traffic is not None and src.server != "simulator":
            raise FieldProblem("migration.live_traffic", "live traffic goes into a simulator source's SMTP front")
        if self.expect.pop3 is not None and src.protocol != "pop3":
            raise FieldProblem("expect.pop3", "needs a pop3 source")
        return self

    @model_validator(mode="after")
    def _ews_roles_fit(self) -> Scenario:
        src, dst = self.source, self.destination
        if dst.protocol == "ews":
            raise FieldProblem("destination.protocol", "mail is verified over IMAP; an EWS-like destination for "
                               "contacts/calendars/tasks/notes is pim_destination: {server: simulator}")
        if src.protocol == "ews" and src.server != "simulator":
            raise FieldProblem("source.server", "an ews source is the simulator's EWS front")
        if self.pim_destination is not None and src.protocol != "ews":
            raise FieldProblem("pim_destination", "contacts, calendars, tasks and notes come from an ews source")
        return self


    @model_validator(mode="after")
    def _batch_fits(self) -> Scenario:
        """A batch runs our engine over IMAP password logins; the rest is single-account only (yet)."""
        if self.batch is None:
            return self
        for role in ("source", "destination"):
            side = getattr(self, role)
            if side.protocol != "imap":
                raise FieldProblem(f"{role}.protocol", "a batch scenario migrates IMAP accounts")
            if side.auth != "password" or side.wrong_password:
                raise FieldProblem(f"{role}.auth", "a batch scenario logs in with passwords; "
                                   "refused logins are batch.wrong_password")
        for field, what in (("command", "an external command"), ("live_traffic", "live traffic")):
            if getattr(self.migration, field) is not None:
                raise FieldProblem(f"migration.{field}", f"{what} is for single-account scenarios")
        if self.pim_destination is not None:
            raise FieldProblem("pim_destination", "a batch scenario migrates mail")
        if self.expect.pop3 or self.expect.live or self.expect.collab:
            raise FieldProblem("expect", "pop3, live and collab expectations are for single-account scenarios")
        return self


def _loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


_VALUE_ERROR = re.compile(r"^(Value|Assertion) error, ")


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate one scenario file; raises ``ScenarioError`` naming the file and field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(path, "", f"cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(path, "", f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(path, "", "a scenario is a mapping (source:, destination:, migration:, expect:)")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field, problem = _loc(first["loc"]), _VALUE_ERROR.sub("", first["msg"])
        cause = first.get("ctx", {}).get("error")
        if isinstance(cause, FieldProblem):
            field, problem = ".".join(filter(None, [field, cause.field])), cause.problem
        extra = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ScenarioError(path, field or "(top level)", problem + extra) from None
    except Exception as exc:  # e.g. a quirk string that does not parse
        raise ScenarioError(path, "", str(exc)) from None
    return scenario.model_copy(update={"file": path, "name": scenario.name or path.stem})
