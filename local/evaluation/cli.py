"""`lockgate eval`: the subcommand's arguments and its run."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import TextIO

from local.evaluation.cases import DEFAULT_CASES, CaseError, load_cases
from local.evaluation.databases import Template, prepared_template
from local.evaluation.report import format_table, write_reports
from local.evaluation.runner import run_suite
from local.stack import database_server, home, upstream_services


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _model_spec(text: str) -> str:
    if not re.match(r"^(scripted|bedrock):.+$", text):
        raise argparse.ArgumentTypeError("expected scripted:FILE or bedrock:MODEL_ID")
    return text


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `lockgate eval`."""
    parser = subparsers.add_parser(
        "eval",
        help="run golden cases and judge the final state of the database",
        description="Run golden cases, each in a fresh database, and check the state they leave.",
    )
    parser.add_argument(
        "cases",
        nargs="*",
        type=Path,
        help=f"case files or directories (default: {DEFAULT_CASES})",
    )
    parser.add_argument(
        "--repeat", type=_positive, default=1, help="runs per case; a case passes if all pass"
    )
    parser.add_argument(
        "--model",
        type=_model_spec,
        default=None,
        help="use this model for every case instead of the case's own (e.g. bedrock:MODEL_ID)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where report.json and chart.png go (default: .lockgate/eval)",
    )


def run(args: argparse.Namespace, out: TextIO, *, template: Template | None = None) -> int:
    """Run `lockgate eval`: 0 when every case passes, 1 on any failure, 2 on bad input.

    `template` reuses an existing migrated, seeded template (tests pass theirs, so the
    cluster-wide tool-role passwords stay as they are); by default one is made and dropped.
    """
    # Tool logs are structured JSON for CloudWatch; here the table says it all.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    try:
        cases = load_cases(args.cases or [DEFAULT_CASES])
    except CaseError as exc:
        print(f"lockgate eval: {exc}", file=sys.stderr)
        return 2
    model_note = args.model or "each case's own model"
    print(
        f"lockgate eval: {len(cases)} cases x {args.repeat} run(s), model: {model_note}", file=out
    )
    if template is not None:
        suite = run_suite(
            cases, template, repeat=args.repeat, model_override=args.model, progress=out
        )
    else:
        with (
            database_server() as admin_url,
            upstream_services() as upstreams,
            prepared_template(admin_url, upstreams) as own,
        ):
            suite = run_suite(
                cases, own, repeat=args.repeat, model_override=args.model, progress=out
            )
    print(file=out)
    print(format_table(suite), file=out)
    report, chart = write_reports(suite, args.out or home() / "eval")
    print(f"report: {report}\nchart:  {chart}", file=out)
    return 0 if suite.passed else 1
