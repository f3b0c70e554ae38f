"""Batch migrations: many mailbox pairs from one file, each run by the single-account engine.

    accounts.py   the batch file (quirkmail CSV or imapsync lines) → AccountLine, pure
    schedule.py   which account may start now (per-server and overall caps), pure rule + gate
    runner.py     run_batch(): worker threads, error isolation, resume
    ledger.py     the output folder: per-account result, report, checkpoint, summary
    journal.py    the per-account JSON-lines importing log
    progress.py   overall and per-account progress bars; the engine's sink per account
    report.py     AccountResult, BatchReport, exit code, the summary table
    cli.py        ``quirkmail migrate --batch FILE``
"""
