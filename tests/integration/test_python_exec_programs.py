"""python_exec runs ordinary analysis code and returns the right values, in fresh processes."""

from __future__ import annotations

import datetime as dt
import json
import statistics
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.pyexec import call, value, workdirs
from tools.python_exec.policy import allowlist, check
from tools.python_exec.sandbox import Ran, SandboxSettings, run_program

ROWS = [
    {"region": "eu", "amount": 120.5, "day": "2030-05-01"},
    {"region": "us", "amount": 80.0, "day": "2030-05-03"},
    {"region": "eu", "amount": 42.25, "day": "2030-05-03"},
    {"region": "ap", "amount": 300.0, "day": "2030-05-07"},
    {"region": "us", "amount": 19.75, "day": "2030-05-09"},
]

PROGRAMS: list[tuple[str, str, object]] = [
    (
        "statistics over rows",
        "import statistics\n"
        "amounts = [r['amount'] for r in inputs['rows']]\n"
        "result = {'mean': statistics.mean(amounts), 'median': statistics.median(amounts),\n"
        "          'stdev': round(statistics.stdev(amounts), 6)}",
        {
            "mean": statistics.mean(r["amount"] for r in ROWS),
            "median": statistics.median(r["amount"] for r in ROWS),
            "stdev": round(statistics.stdev(r["amount"] for r in ROWS), 6),
        },
    ),
    (
        "grouping with defaultdict",
        "from collections import defaultdict\n"
        "totals = defaultdict(float)\n"
        "for r in inputs['rows']:\n"
        "    totals[r['region']] += r['amount']\n"
        "result = dict(sorted(totals.items()))",
        {"ap": 300.0, "eu": 162.75, "us": 99.75},
    ),
    (
        "counting with Counter",
        "import collections\n"
        "result = collections.Counter(r['region'] for r in inputs['rows']).most_common(1)",
        [["eu", 2]],
    ),
    (
        "itertools.groupby by day",
        "import itertools\n"
        "rows = sorted(inputs['rows'], key=lambda r: r['day'])\n"
        "result = {day: len(list(g)) for day, g in itertools.groupby(rows, key=lambda r: r['day'])}",
        {"2030-05-01": 1, "2030-05-03": 2, "2030-05-07": 1, "2030-05-09": 1},
    ),
    (
        "date arithmetic",
        "import datetime\n"
        "start = datetime.date.fromisoformat('2030-05-10')\n"
        "result = {'in_10_days': start + datetime.timedelta(days=10),\n"
        "          'weekday': start.strftime('%A'),\n"
        "          'days_to_new_year': (datetime.date(2031, 1, 1) - start).days}",
        {"in_10_days": "2030-05-20", "weekday": "Friday", "days_to_new_year": 236},
    ),
    (
        "parsing timestamps",
        "from datetime import datetime\n"
        "a = datetime.strptime('2030-05-10 08:15', '%Y-%m-%d %H:%M')\n"
        "b = datetime.strptime('2030-05-11 10:45', '%Y-%m-%d %H:%M')\n"
        "(b - a).total_seconds() / 3600",
        26.5,
    ),
    (
        "timedelta and datetime results",
        "import datetime\n"
        "result = [datetime.datetime(2030, 5, 10, 12, 30), datetime.timedelta(hours=36)]",
        ["2030-05-10T12:30:00", "1 day, 12:00:00"],
    ),
    (
        "string parsing with re",
        "import re\n"
        "text = 'Order A-17 cost $12.50; order B-3 cost $7.25'\n"
        "result = {m[0]: float(m[1]) for m in re.findall(r'([A-Z]-\\d+) cost \\$(\\d+\\.\\d+)', text)}",
        {"A-17": 12.5, "B-3": 7.25},
    ),
    (
        "splitting and stripping",
        "line = ' alice , 34 ; bob , 29 '\n"
        "pairs = [p.split(',') for p in line.split(';')]\n"
        "result = {n.strip(): int(a) for n, a in pairs}",
        {"alice": 34, "bob": 29},
    ),
    (
        "recursion within limits",
        "def fact(n):\n    return 1 if n <= 1 else n * fact(n - 1)\nresult = fact(30)",
        265252859812191058636308480000000,
    ),
    (
        "memoised recursion",
        "import functools\n"
        "@functools.lru_cache(maxsize=None)\n"
        "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"
        "result = fib(90)",
        2880067194370816120,
    ),
    (
        "decimal money",
        "from decimal import Decimal, ROUND_HALF_UP\n"
        "total = sum(Decimal(str(r['amount'])) for r in inputs['rows'])\n"
        "result = (total * Decimal('1.2')).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)",
        "675.00",
    ),
    (
        "fractions",
        "from fractions import Fraction\nresult = Fraction(1, 3) + Fraction(1, 6)",
        "1/2",
    ),
    (
        "json round trip",
        'import json\ndoc = json.loads(\'{"a": [1, 2, {"b": null}]}\')\n'
        "result = json.dumps(doc, sort_keys=True)",
        '{"a": [1, 2, {"b": null}]}',
    ),
    (
        "math",
        "import math\nresult = [math.floor(math.sqrt(50)), round(math.log10(1000)), math.gcd(84, 36)]",
        [7, 3, 12],
    ),
    (
        "seeded random",
        "import random\nrng = random.Random(42)\nresult = sorted(rng.sample(range(100), 3))",
        sorted(__import__("random").Random(42).sample(range(100), 3)),
    ),
    (
        "classes with methods",
        "class Account:\n"
        "    def open(self, balance):\n        self.balance = balance\n        return self\n"
        "    def pay(self, amount):\n        self.balance -= amount\n        return self.balance\n"
        "a = Account().open(100)\na.pay(30)\nresult = a.pay(5)",
        65,
    ),
    (
        "generators",
        "def evens(n):\n    for i in range(n):\n        if i % 2 == 0:\n            yield i\n"
        "result = sum(evens(101))",
        2550,
    ),
    (
        "exceptions handled by the program",
        "def parse(x):\n    try:\n        return int(x)\n    except ValueError:\n        return None\n"
        "result = [parse(v) for v in ['1', 'x', '3']]",
        [1, None, 3],
    ),
    (
        "f-strings with format specs",
        "total = 1234.5678\nresult = f'{total:,.2f} | {0.256:.1%} | {42:>5}'",
        "1,234.57 | 25.6% |    42",
    ),
    (
        "string module",
        "import string\nresult = [string.ascii_uppercase[:3], string.Template('$who paid').substitute(who='bob')]",
        ["ABC", "bob paid"],
    ),
    (
        "match statement",
        "def kind(v):\n    match v:\n        case {'type': 'refund', 'amount': a}:\n            return -a\n"
        "        case {'amount': a}:\n            return a\n        case _:\n            return 0\n"
        "result = sum(kind(v) for v in [{'amount': 5}, {'type': 'refund', 'amount': 2}, {}])",
        3,
    ),
    (
        "closures and sorting",
        "def by(field):\n    return lambda r: r[field]\n"
        "result = [r['region'] for r in sorted(inputs['rows'], key=by('amount'), reverse=True)][:2]",
        ["ap", "eu"],
    ),
    (
        "tuples and sets become lists",
        "result = {'pair': (1, 'a'), 'unique': {3, 1, 2}}",
        {"pair": [1, "a"], "unique": [1, 2, 3]},
    ),
    ("last expression is the result", "x = 6\nx * 7", 42),
    ("big integers", "2 ** 100", 2**100),
]


@pytest.mark.parametrize(
    ("code", "expected"), [(c, e) for _, c, e in PROGRAMS], ids=[n for n, _, _ in PROGRAMS]
)
def test_ordinary_programs_return_the_right_values(code: str, expected: object) -> None:
    assert value(code, {"rows": ROWS}) == expected


def test_at_least_twenty_ordinary_programs() -> None:
    assert len(PROGRAMS) >= 20


def test_inputs_arrive_as_json_text_as_a_model_sends_them() -> None:
    assert value(
        "result = sum(r['amount'] for r in inputs['rows'])", json.dumps({"rows": ROWS})
    ) == sum(r["amount"] for r in ROWS)


def test_print_output_is_returned_and_capped() -> None:
    response = call("for i in range(3):\n    print('row', i, sep='=')\nresult = 'done'")
    assert response["output"]["stdout"] == "row=0\nrow=1\nrow=2\n"
    assert response["output"]["stdout_truncated"] is False

    flood = call("for i in range(100000):\n    print('x' * 100)")
    assert flood["status"] == "ok"
    assert flood["output"]["stdout_truncated"] is True
    assert len(flood["output"]["stdout"]) == SandboxSettings().max_stdout_chars


def test_timings_are_reported() -> None:
    output = call("result = 1")["output"]
    timings = output["timings"]
    assert timings["check_ms"] >= 0
    assert timings["run_ms"] >= 0
    assert timings["total_ms"] >= timings["check_ms"]


def test_a_program_error_names_the_exception_and_line() -> None:
    response = call("x = 1\ny = [1, 2][5]")
    assert response["status"] == "error"
    assert response["error"]["kind"] == "validation"
    assert response["error"]["details"] == {"error": "IndexError", "line": 2}


def test_nothing_survives_into_the_next_call() -> None:
    before = workdirs()
    assert value("import json\nj = json\nj.extra = 1\ncounter = 41\nresult = counter + 1") == 42
    assert call("result = counter")["error"]["details"]["error"] == "NameError"
    assert (
        call("import json\nj = json\nresult = j.extra")["error"]["details"]["error"]
        == "AttributeError"
    )
    assert workdirs() == before


def test_concurrent_calls_each_get_their_own_process() -> None:
    before = workdirs()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda n: value(f"result = sum(range({n}))"), range(100, 116)))
    assert results == [sum(range(n)) for n in range(100, 116)]
    assert workdirs() == before


def test_the_child_is_isolated_as_far_as_this_machine_allows() -> None:
    allowed = allowlist()
    assert check("result = 1", allowed) is None
    outcome = run_program("result = 1", None, SandboxSettings(), allowed)
    assert isinstance(outcome, Ran)
    import os

    if os.geteuid() == 0:  # CI runs as root: a network namespace and nobody's uid
        assert outcome.isolation == {"network": "namespace", "user": "nobody"}
    else:
        assert outcome.isolation["user"] == "unchanged"


def test_numpy_behind_the_numeric_flag() -> None:
    pytest.importorskip("numpy")
    code = "import numpy as np\na = np.array(inputs['values'])\nresult = {'mean': a.mean(), 'norm': np.linalg.norm(a)}"
    assert check(code, allowlist()) is not None  # off by default: numpy is refused
    allowed = allowlist(numeric=True)
    assert check(code, allowed) is None
    outcome = run_program(code, {"values": [3.0, 4.0]}, SandboxSettings(numeric=True), allowed)
    assert isinstance(outcome, Ran), outcome
    assert outcome.result == {"mean": 3.5, "norm": 5.0}


def test_dates_are_computed_from_the_real_today_not_a_fixed_one() -> None:
    today = dt.datetime.now(dt.UTC).date()
    assert (
        value("import datetime\ndatetime.datetime.now(datetime.timezone.utc).date()")
        == today.isoformat()
    )


def test_a_broad_sample_of_the_allowed_modules_works_as_in_plain_python() -> None:
    # Given a program touching many functions of every allowed module (some of which import
    # lazily or inspect frames internally), when it runs in the sandbox and in this process,
    # then both give the same values.
    code = (Path(__file__).parent / "python_exec_sample.txt").read_text()
    here: dict[str, Any] = {}
    exec(compile(code, "sample", "exec"), here)
    expected = json.loads(json.dumps(here["result"], default=str))
    assert value(code) == expected
