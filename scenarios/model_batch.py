"""The scenario's ``batch:`` block: several mailbox pairs on the same two providers, migrated by
``migrate --batch`` (``migrator.batch.run_batch``) and verified account by account::

    source:      {server: simulator, profile: dovecot, fixture: {seed: 3, messages: 12, folders: 3}}
    destination: {server: simulator}
    batch:
      accounts: 3                 # account i (1-based) has the fixture with seed + i - 1
      per_host: 2                 # the batch's caps (migrator.batch.schedule)
      per_dest_host: 1
      wrong_password: [2]         # these source accounts get a wrong password: they must fail alone
    migration: {options: {connections: 1}, runs: 1}
    expect: {exit_code: 0, identical: true}   # judged for every account (but the wrong_password ones)

Each source account is ``<source.user><i>`` on one server, each destination ``<destination.user><i>``
(a fresh Dovecot user when the side is dovecot). ``expect:`` holds for each account on its own:
its exit code, its copies per run, its destination against its source; the caps hold for the
batch (the scheduler's recorded peaks never pass them). A later run (``migration.runs``) is the
batch run again with ``--again`` (a delta pass), after ``new_mail_between_runs`` reached every
source account.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_ACCOUNTS = 20  # a scenario stays fast; the benchmark (benchmarks/bench_batch.py) does hundreds


class BatchSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accounts: int = Field(ge=1, le=MAX_ACCOUNTS)
    per_host: int = Field(4, ge=1)
    per_dest_host: int | None = Field(None, ge=1)
    accounts_parallel: int = Field(8, ge=1)
    wrong_password: list[int] = []  # 1-based account numbers whose source login must be refused

    @model_validator(mode="after")
    def _accounts_exist(self) -> BatchSpec:
        bad = [n for n in self.wrong_password if not 1 <= n <= self.accounts]
        if bad:
            from scenarios.model import FieldProblem

            raise FieldProblem("wrong_password", f"account(s) {bad} not among 1..{self.accounts}")
        return self
