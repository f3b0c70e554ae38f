"""``quirkmail anonymise INPUT... -o OUT [--seed N] [--mapping FILE]``: shareable copies.

Inputs are transcripts (.jsonl, or a tree of them), .eml files or directories of them, mbox files and
Maildirs; each comes out as the same kind under OUT (Dovecot rawlogs and imapsync logs as transcripts) (a directory; or, for one input file, OUT may be the output
file's name). One run maps every name consistently across all its inputs. ``--mapping`` writes
what de-anonymises the output (addresses, names, folders, subjects, Message-IDs): keep it with the
customer. Without ``--seed`` the seed is random, so a guessed original cannot be checked against
the output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from migrator.errors import ExitCode


def add(sub) -> None:
    p = sub.add_parser(
        "anonymise",
        help="rewrite addresses, names, subjects, bodies and folders; keep sizes and structure",
        description="Make a customer's transcripts, .eml files, mbox files or Maildirs shareable: every "
        "rewritten value keeps its byte length, so literal counts, sizes, MIME structure, line ends and "
        "dates stay as they were.",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="transcript(s), .eml(s), mbox, Maildir, Dovecot rawlog, imapsync log")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="output directory (or file, for one input file)")
    p.add_argument("--seed", help="same seed, same pseudonyms (default: random; keep a seed you give private)")
    p.add_argument("--mapping", type=Path, metavar="FILE", help="write original → pseudonym (JSON); it de-anonymises")
    p.set_defaults(handler=cmd_anonymise)


def cmd_anonymise(args: argparse.Namespace) -> int:
    from transcripts.anon_files import learn, output_name, write
    from transcripts.anonymise import AnonymiseError, Anonymiser

    anonymiser = Anonymiser(args.seed)
    try:
        one_file = len(args.inputs) == 1 and args.inputs[0].is_file() and not args.output.is_dir() \
            and args.output.suffix
        kinds = learn(anonymiser, args.inputs)  # every input read (and checked) before anything is written
        outputs = [args.output] if one_file else [args.output / output_name(anonymiser, p) for p in args.inputs]
        if len(set(outputs)) != len(outputs):
            raise AnonymiseError(str(args.output), "two inputs have the same name; give them in separate runs")
        masked = anonymiser.pseudonyms.masked
        write(anonymiser, args.inputs, outputs, kinds)
        masked = anonymiser.pseudonyms.masked - masked  # the second pass's count: one per secret
        if args.mapping:
            args.mapping.parent.mkdir(parents=True, exist_ok=True)
            args.mapping.write_text(json.dumps(anonymiser.mapping(), indent=1, ensure_ascii=False) + "\n",
                                    encoding="utf-8")
    except AnonymiseError as exc:
        print(f"quirkmail anonymise: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    for path, out, kind in zip(args.inputs, outputs, kinds):
        print(f"{kind:14} {path} -> {out}")
    table = anonymiser.mapping()
    counts = ", ".join(f"{len(table.get(k, {}))} {k}" for k in ("addresses", "domains", "folders", "subjects", "files"))
    print(f"rewritten: {counts}; secrets masked here: {masked}"
          + (f"; mapping: {args.mapping}" if args.mapping else ""))
    return ExitCode.OK
