"""The static check: what is refused, where, and what the model is told to use instead."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.python_exec.policy import allowlist, check
from tools.python_exec.runner import STANDARD_MODULES


def refusal(code: str) -> dict[str, object]:
    found = check(code, allowlist())
    assert found is not None, code
    return found.details()


def test_a_refused_import_names_the_module_line_and_what_is_allowed() -> None:
    details = refusal("x = 1\nimport os")
    assert details["node"] == "Import"
    assert details["line"] == 2
    assert details["name"] == "os"
    assert details["allowed"] == list(STANDARD_MODULES)


def test_a_misspelt_member_gets_close_matches() -> None:
    details = refusal("import math\nmath.sqroot(4)")
    assert details["name"] == "sqroot"
    assert "sqrt" in details["allowed"]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("from datetime import sys", "sys"),
        ("import numpy", "numpy"),
        ("from statistics import *", "*"),
        ("x.__class__", "__class__"),
        ("x._private", "_private"),
        ("def __init__(self): pass", "__init__"),
        ("_lockgate_last = 1", "_lockgate_last"),
        ("'{}'.format(1)", "format"),
        ("eval('1')", "eval"),
        ("f = getattr", "getattr"),
        ("import json\njson.loads = None", "loads"),
        ("import json\ndel json.loads", "loads"),
        ("x = y.f_back", "f_back"),
        ("t.to_csv('out.csv')", "to_csv"),
        ("t.query('a > 1')", "query"),
        # A module's name bound to something else keeps no member privileges.
        ("import re\nre = [1]\nre.compile", "compile"),
        ("import json\ndef f(json):\n    return json.dump(1)", "dump"),
        ("import re\nfor re in []:\n    pass\nre.compile", "compile"),
    ],
)
def test_each_rule_names_what_it_refused(code: str, name: str) -> None:
    assert refusal(code)["name"] == name


@pytest.mark.parametrize(
    "code",
    [
        "import math, statistics as st\nresult = st.mean([math.pi, math.e])",
        "from collections import Counter, defaultdict",
        "from datetime import date, timedelta\nresult = date(2030, 1, 1) + timedelta(days=1)",
        "import collections\nP = collections.namedtuple('P', 'x y')\nresult = P(1, 2)._asdict()",
        "t.to_csv()",  # no path: returns text
        "result = f'{1 + 1:>4}'",
        "class A:\n    def total(self, xs):\n        return sum(xs)",
        "for _ in range(3):\n    pass",
        "match x:\n    case {'a': 1, **rest}:\n        pass",
        "try:\n    pass\nexcept (ValueError, KeyError) as error:\n    print(error)",
    ],
)
def test_ordinary_code_passes(code: str) -> None:
    assert check(code, allowlist()) is None


def test_numpy_members_are_checked_when_enabled() -> None:
    pytest.importorskip("numpy")
    allowed = allowlist(numeric=True)
    assert check("import numpy as np\nnp.linalg.norm([3, 4])", allowed) is None
    refused = check("import numpy as np\nnp.linalg.nope([3, 4])", allowed)
    assert refused is not None
    assert refused.name == "nope"
    assert check("import numpy as np\nnp.load('x')", allowed) is not None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_refused_or_allowed_never_a_crash(code: str) -> None:
    found = check(code, allowlist())
    assert found is None or found.message


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[a-z_]{1,3}(\.[a-z_]{1,12}){1,4}", fullmatch=True))
def test_attribute_chains_never_reach_an_underscore_name(chain: str) -> None:
    found = check(chain, allowlist())
    named_tuple_api = {"_asdict", "_replace", "_fields", "_make", "_field_defaults"}
    if any(p.startswith("_") and p not in named_tuple_api for p in chain.split(".")[1:]):
        assert found is not None
