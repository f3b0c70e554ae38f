"""The scenario file's batch: key — several accounts on the same providers, judged one by one.

The library's batch scenarios run and pass with a verdict per account; a destination damaged in
one account fails the scenario naming that account alone; junit.xml gets a testcase per account;
the block's mistakes are refused with the field they are about.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarios.expectations import AccountCheck
from scenarios.model import ScenarioError, load_scenario
from scenarios.reports import junit_tree
from scenarios.runner import ScenarioResult, run_scenario

LIBRARY = Path(__file__).resolve().parent.parent / "scenarios" / "library" / "batch"


def test_accounts_one_destination_capped_and_a_wrong_password_failing_alone():
    result = run_scenario(load_scenario(LIBRARY / "three-accounts-one-destination.yaml"))
    assert result.passed, result.failures
    assert [(a.id, a.outcome, a.copied) for a in result.accounts] == [
        ("account1", "ok", 12), ("account2", "authentication", 0), ("account3", "ok", 12)]
    assert all(a.verify.identical for a in (result.accounts[0], result.accounts[2]))
    assert result.accounts[1].verify is None
    assert list(result.batch["peak_per_dest_host"].values()) == [1]  # the cap of the file, reached and kept
    assert result.batch["exit_code"] == 4


def test_a_damaged_account_fails_the_scenario_by_name():
    def lose_one(source, dest):
        if dest.user == "alice3":
            import imapclient

            url = dest.endpoint.url
            with imapclient.IMAPClient(url.host, port=url.port, ssl=False) as c:
                c.login(url.user, dest.password)
                c.select_folder("INBOX")
                c.delete_messages(c.search()[:1])
                c.expunge()

    result = run_scenario(load_scenario(LIBRARY / "three-accounts-one-destination.yaml"), after_migration=lose_one)
    assert not result.passed
    assert [a.passed for a in result.accounts] == [True, True, False]
    assert result.failures == [f for f in result.failures if f.startswith("account account3: ")]
    assert "1 missing" in result.failures[0]


def test_cutover_delta_batch_copies_only_new_mail_per_account():
    result = run_scenario(load_scenario(LIBRARY / "cutover-delta-batch.yaml"))
    assert result.passed, result.failures
    assert [r.copied for r in result.runs] == [20, 6]  # the batch's totals; each account 10 then 3
    assert [a.copied for a in result.accounts] == [3, 3]


def test_junit_has_a_testcase_per_account():
    result = ScenarioResult(name="b", area="batch", file="b.yaml", passed=False, failures=["account a2: lost"],
                            accounts=[AccountCheck(id="a1", outcome="ok", exit_code=0, passed=True),
                                      AccountCheck(id="a2", outcome="ok", exit_code=0, failures=["lost"])])
    suite = junit_tree([result]).getroot()[0]
    assert [c.get("name") for c in suite] == ["b", "b/a1", "b/a2"]
    assert (suite.get("tests"), suite.get("failures")) == ("3", "2")
    assert suite[2].find("failure").get("message") == "lost" and suite[1].find("failure") is None


@pytest.mark.parametrize("extra, field", [
    ("batch: {accounts: 2, wrong_password: [3]}", "batch.wrong_password"),
    ("batch: {accounts: 0}", "batch.accounts"),
    ("batch: {accounts: 2, per_host: 2, colour: red}", "batch.colour"),
    ("batch: {accounts: 2}\nmigration: {command: [\"true\"]}", "migration.command"),
])
def test_batch_block_mistakes_name_the_field(tmp_path, extra, field):
    path = tmp_path / "s.yaml"
    path.write_text("source: {server: simulator}\ndestination: {server: simulator}\n" + extra + "\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert caught.value.field == field, str(caught.value)


def test_a_batch_of_pop3_sources_is_refused(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("source: {server: simulator, protocol: pop3}\ndestination: {server: simulator}\n"
                    "batch: {accounts: 2}\n")
    with pytest.raises(ScenarioError, match="source.protocol: a batch scenario migrates IMAP accounts"):
        load_scenario(path)


def test_report_html_lists_each_account():
    from scenarios.report_html import scenario_section

    result = ScenarioResult(name="b", area="batch", file="b.yaml", passed=False, failures=["account a2: lost"],
                            batch={"peak_per_host": {"h:1": 2}, "peak_per_dest_host": {"d:2": 1}},
                            accounts=[AccountCheck(id="a1", outcome="ok", exit_code=0, copied=4, passed=True),
                                      AccountCheck(id="a2", outcome="authentication", exit_code=4, failures=["x"])])
    html = scenario_section(result)
    assert '<table class="accounts">' in html and "peak accounts per server: h:1: 2, d:2: 1" in html
    assert '<td>a2</td><td class="failed">failed</td><td>authentication</td><td class="n">4</td>' in html
