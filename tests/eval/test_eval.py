"""The golden-case harness: shipped cases pass, wrong expectations fail, reports are written.

Assertions are on results (outcomes, failed checks, exit codes, files), never on wording.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from local.evaluation.cases import DEFAULT_CASES, CaseError, expand_dates, load_case, load_cases
from local.evaluation.cli import add_parser, run
from local.evaluation.databases import Template, plain
from local.evaluation.report import CHART_FILE, REPORT_FILE
from local.evaluation.runner import run_case, run_suite


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lockgate")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["eval", *argv])


def shipped(stem: str) -> Path:
    return next(DEFAULT_CASES.glob(f"{stem}*.yaml"))


def write_variant(tmp_path: Path, stem: str, **changes: Any) -> Path:
    """A shipped case with some top-level or `expect` fields replaced."""
    document = yaml.safe_load(expand_dates(shipped(stem).read_text()))
    expect = changes.pop("expect", {})
    document.update(changes)
    document["expect"].update(expect)
    document["name"] = f"{document['name']}_variant"
    path = tmp_path / f"{stem}_variant.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def eval_databases(template: Template) -> list[str]:
    with psycopg.connect(template.server_url) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'lockgate\\_eval\\_%'"
        ).fetchall()
    return [row[0] for row in rows]


def test_every_shipped_case_passes_with_its_scripted_model(eval_template: Template) -> None:
    cases = load_cases([DEFAULT_CASES])
    suite = run_suite(cases, eval_template)

    failed = {c.name: [f.check for r in c.runs for f in r.failures] for c in suite.cases}
    assert {name: checks for name, checks in failed.items() if checks} == {}
    assert len(suite.cases) >= 15
    outcomes = {c.runs[0].outcome for c in suite.cases}
    assert outcomes == {"completed", "step_limit", "loop_detected", "budget_exhausted", "error"}
    # The suite covers what the harness exists for: retries, refusals, replays, several tools.
    assert sum(c.runs[0].validation_retries > 0 for c in suite.cases) >= 5
    assert sum(case.case.replay_last_write for case in cases) >= 2
    assert any(case.case.user == "bob" for case in cases)
    assert any(case.case.principal is not None for case in cases)
    assert sum(bool(case.case.expect.shown) for case in cases) >= 2
    assert eval_databases(eval_template) == []


@pytest.mark.parametrize(
    ("stem", "changes", "failed_check"),
    [
        ("02", {"expect": {"outcome": "step_limit"}}, "outcome"),
        (
            "02",
            {
                "expect": {
                    "rows": [
                        {
                            "sql": "SELECT tier FROM customers WHERE id = 'C-1003'",
                            "equals": [["gold"]],
                        }
                    ]
                }
            },
            "rows",
        ),
        ("02", {"expect": {"unchanged": ["customers"]}}, "unchanged"),
        ("05", {"expect": {"validation_retries": 0}}, "validation_retries"),
        ("05", {"expect": {"validation_retries": {"max": 0}}}, "validation_retries"),
        ("05", {"expect": {"max_steps": 2}}, "max_steps"),
        ("05", {"expect": {"max_tokens": 100}}, "max_tokens"),
        ("01", {"expect": {"not_shown": ["Ada Lovelace"]}}, "not_shown"),
        (
            "01",
            {"expect": {"shown": [{"step": 1, "includes": {"output": {"tier": "platinum"}}}]}},
            "shown",
        ),
        ("01", {"expect": {"shown": [{"step": 3, "includes": {"status": "ok"}}]}}, "shown"),
        ("25", {"expect": {"shown": [{"step": 1, "includes": {"status": "ok"}}]}}, "shown"),
        (
            "25",
            {"expect": {"shown": [{"step": 2, "includes": {"output": {"result": {"mean": 411}}}}]}},
            "shown",
        ),
        ("01", {"replay_last_write": True}, "replay"),
        ("01", {"fixture": "UPDATE no_such_table SET x = 1"}, "harness"),
    ],
)
def test_a_wrong_expectation_fails_the_run(
    tmp_path: Path,
    eval_template: Template,
    stem: str,
    changes: dict[str, Any],
    failed_check: str,
) -> None:
    case = load_case(write_variant(tmp_path, stem, **changes))

    result = run_case(case, eval_template)

    assert not result.passed
    assert {f.check for f in result.failures} == {failed_check}


def test_cli_exits_non_zero_on_a_failing_case_and_reports_it(
    tmp_path: Path, eval_template: Template
) -> None:
    wrong = write_variant(
        tmp_path,
        "04",
        expect={"rows": [{"sql": "SELECT count(*) FROM bookings", "equals": [[2]]}]},
    )
    out_dir = tmp_path / "out"

    code = run(
        parse(str(shipped("01")), str(wrong), "--out", str(out_dir)),
        io.StringIO(),
        template=eval_template,
    )

    report = json.loads((out_dir / REPORT_FILE).read_text())
    assert code == 1
    assert report["passed"] is False
    assert report["summary"]["cases"] == 2 and report["summary"]["failed"] == 1
    verdicts = {c["name"]: c["pass_k"] for c in report["cases"]}
    assert verdicts == {"lookup_customer": True, "book_flight_variant": False}
    failing = next(c for c in report["cases"] if not c["pass_k"])
    assert [f["check"] for f in failing["runs"][0]["failures"]] == ["rows"]


def test_repeat_runs_each_case_in_a_fresh_database_and_writes_report_and_chart(
    tmp_path: Path, eval_template: Template
) -> None:
    out_dir = tmp_path / "out"
    cases = [str(shipped("15")), str(shipped("17")), str(shipped("19"))]

    code = run(
        parse(*cases, "--repeat", "3", "--out", str(out_dir)), io.StringIO(), template=eval_template
    )

    # Each repetition writes again and still sees exactly one booking: nothing is shared.
    assert code == 0
    report = json.loads((out_dir / REPORT_FILE).read_text())
    assert report["repeat"] == 3 and report["passed"] is True
    assert report["summary"] == report["summary"] | {"cases": 3, "runs": 3 * 3, "runs_passed": 9}
    for case in report["cases"]:
        assert case["pass_k"] is True and case["passes"] == 3
        assert [r["run"] for r in case["runs"]] == [1, 2, 3]
        for r in case["runs"]:
            assert r["model_id"].startswith("scripted:")
            assert r["cost_usd"] == 0
            assert r["steps"] > 0 and r["input_tokens"] > 0 and r["output_tokens"] > 0
    by_name = {c["name"]: c for c in report["cases"]}
    assert {r["outcome"] for r in by_name["step_limit"]["runs"]} == {"step_limit"}
    assert {r["steps"] for r in by_name["multi_tool_upgrade_and_book"]["runs"]} == {4}
    chart = out_dir / CHART_FILE
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert eval_databases(eval_template) == []


def test_invalid_case_files_are_refused_before_anything_runs(
    tmp_path: Path, eval_template: Template
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nrequest: r\nuser: mallory\nmodel: {script: [{nonsense: 1}]}\n"
        "expect: {outcome: finished}\n"
    )
    with pytest.raises(CaseError):
        load_case(bad)
    assert (
        run(parse(str(bad), "--out", str(tmp_path / "out")), io.StringIO(), template=eval_template)
        == 2
    )
    assert not (tmp_path / "out").exists()


def test_duplicate_case_names_are_refused(tmp_path: Path) -> None:
    for i in (1, 2):
        (tmp_path / f"{i}.yaml").write_text(shipped("01").read_text())
    with pytest.raises(CaseError):
        load_cases([tmp_path])


def test_rows_compare_in_one_plain_form() -> None:
    import datetime as dt
    import uuid
    from decimal import Decimal

    day = dt.date(2030, 5, 17)
    assert plain([(day, Decimal("2"), Decimal("1.5"), uuid.UUID(int=1))]) == [
        ["2030-05-17", 2, 1.5, "00000000-0000-0000-0000-000000000001"]
    ]


def test_model_option_replaces_every_case_model(tmp_path: Path, eval_template: Template) -> None:
    # Given case 05's script as a model file, used for cases 05 and 01 alike
    steps = yaml.safe_load(expand_dates(shipped("05").read_text()))["model"]["script"]
    script = tmp_path / "override.yaml"
    script.write_text(yaml.safe_dump({"model": "override", "steps": steps}))
    out_dir = tmp_path / "out"
    argv = [str(shipped("05")), str(shipped("01")), "--model", f"scripted:{script}"]

    code = run(parse(*argv, "--out", str(out_dir)), io.StringIO(), template=eval_template)

    # Then 05 passes as before, and 01 fails: the override booked where 01 must not write.
    report = json.loads((out_dir / REPORT_FILE).read_text())
    assert code == 1
    assert report["model_override"] == f"scripted:{script}"
    runs = {c["name"]: c["runs"][0] for c in report["cases"]}
    assert runs["validation_city_names"]["passed"] is True
    assert runs["validation_city_names"]["model_id"] == "scripted:override"
    assert runs["lookup_customer"]["model_id"] == "scripted:override"
    assert runs["lookup_customer"]["passed"] is False
    assert "unchanged" in {f["check"] for f in runs["lookup_customer"]["failures"]}


def test_a_model_that_cannot_be_built_fails_the_case_not_the_run(
    tmp_path: Path, eval_template: Template
) -> None:
    case = load_case(shipped("01"))

    result = run_case(case, eval_template, model_override=f"scripted:{tmp_path / 'missing.yaml'}")

    assert not result.passed
    assert [f.check for f in result.failures] == ["harness"]
    assert eval_databases(eval_template) == []
