"""python_exec against the published escapes of Python sandboxes.

Each attack runs through the tool's handler with a canary secret in this process's
environment (as an AWS credential and a variable of its own) and in a file beside the tool.
Whatever the attack does, the canary never appears in the response, this process is
unaffected, no working directory is left behind, and the next call still works. Most attacks
are refused by the static check; the rest are stopped by the child's limits or contained by its
runtime layer. A second set runs programs the static check would refuse straight into the child,
to prove the runtime layer holds on its own.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pyexec import call, fast_limits, value, workdirs
from tools.python_exec import handler as python_exec
from tools.python_exec import runner
from tools.python_exec.policy import allowlist
from tools.python_exec.sandbox import RUNNER, Failed, Ran, SandboxSettings, run_program

__all__ = ["fast_limits"]

CANARY = f"canary-{secrets.token_hex(12)}"
# A canary anyone may read (`nobody` too): what a program that got past the audit hook could
# reach; the one beside the tool is readable by its owner only.
READABLE = Path(tempfile.gettempdir()) / f"lockgate-canary-{secrets.token_hex(6)}.txt"
REFUSED, STOPPED, CONTAINED = "refused", "stopped", "contained"

ATTACKS: list[tuple[str, str, str]] = [
    # Format strings that walk attributes.
    ("format walks attributes", "'{0.__class__.__mro__}'.format(1)", REFUSED),
    (
        "format_map walks globals",
        "s = '{x.__init__.__globals__}'\ns.format_map({'x': print})",
        REFUSED,
    ),
    ("string.Formatter", "import string\nstring.Formatter().format('{0.__class__}', 1)", REFUSED),
    ("f-string dunder", "f'{(1).__class__}'", REFUSED),
    # Pivots through allowed modules to sys, os, builtins.
    ("datetime.sys", "import datetime\ndatetime.sys.modules['os'].environ", REFUSED),
    ("alias of datetime.sys", "import datetime\nd = datetime\nresult = d.sys.modules", CONTAINED),
    ("random._os", "import random\nrandom._os.environ", REFUSED),
    ("json.decoder module", "import json\nj = json\nresult = j.decoder", CONTAINED),
    ("collections.abc", "from collections import abc", REFUSED),
    ("dotted submodule", "import collections.abc", REFUSED),
    ("statistics.sys via alias", "import statistics\ns = statistics\nresult = s.sys", CONTAINED),
    ("import os", "import os\nresult = os.environ", REFUSED),
    ("import sys", "import sys\nresult = sys.modules", REFUSED),
    ("import subprocess", "import subprocess\nsubprocess.run(['cat', 'PATH'])", REFUSED),
    ("import socket", "import socket\nsocket.create_connection(('127.0.0.1', 5432))", REFUSED),
    ("import ctypes", "import ctypes", REFUSED),
    ("import builtins", "import builtins\nbuiltins.open('PATH')", REFUSED),
    ("import importlib", "import importlib\nimportlib.import_module('os')", REFUSED),
    ("relative import", "from . import runner", REFUSED),
    ("__import__", "__import__('os').environ", REFUSED),
    ("open the canary", "result = open('PATH').read()", REFUSED),
    ("print's instance", "print.__self__", REFUSED),
    ("subclass walk", "().__class__.__base__.__subclasses__()", REFUSED),
    ("getattr by string", "getattr(print, '__self__')", REFUSED),
    (
        "update_wrapper copies a module's globals",
        "import functools, statistics\ndef f():\n    return 1\n"
        "functools.update_wrapper(f, statistics.mean, assigned=(), updated=('__globals__',))\n"
        "result = str(sys.modules)",
        REFUSED,
    ),
    (
        "wraps copies a module's globals",
        "import functools, json\n@functools.wraps(json.dumps, assigned=(), updated=('__globals__',))\n"
        "def f():\n    return 1\nresult = str(codecs)",
        REFUSED,
    ),
    ("a dunder name as text", "import collections\nname = '__globals__'", REFUSED),
    (
        "a module's name rebound to dodge the method rules",
        "import json\nimport statistics\njson = statistics\nresult = json.dump",
        REFUSED,
    ),
    (
        "format read through a class pattern",
        "template = '{0.__func__.__globals__[sys].modules[os].environ}'\n"
        "match template:\n    case str(format=fmt):\n        result = fmt(print)",
        REFUSED,
    ),
    (
        "cached_property stores under a name built at run time",
        "import functools\ncp = functools.cached_property(lambda self: 1)\n"
        "cp.attrname = '_' * 2 + 'array_interface' + '_' * 2",
        REFUSED,
    ),
    ("vars of a module", "import json\nresult = vars(json)", REFUSED),
    # Frames, tracebacks, generator and coroutine internals.
    (
        "generator frame",
        "def g():\n    yield 1\nx = g()\nresult = x.gi_frame.f_back.f_globals",
        REFUSED,
    ),
    ("generator code", "def g():\n    yield 1\nresult = g().gi_code.co_consts", REFUSED),
    (
        "traceback frame",
        "try:\n    1 / 0\nexcept Exception as e:\n    result = e.__traceback__.tb_frame.f_back",
        REFUSED,
    ),
    (
        "with_traceback",
        "try:\n    1 / 0\nexcept Exception as e:\n    e.with_traceback(None)",
        REFUSED,
    ),
    ("coroutine", "async def f():\n    return 1\nresult = f().cr_frame", REFUSED),
    ("function code", "f = lambda: 0\nresult = f.__code__", REFUSED),
    ("function globals", "f = lambda: 0\nresult = f.__globals__", REFUSED),
    ("class mro", "class A:\n    pass\nresult = A.mro()", REFUSED),
    ("global", "x = 1\ndef f():\n    global x\n    x = 2", REFUSED),
    # Decorators, descriptors and special-method hooks.
    ("descriptor", "class D:\n    def __get__(self, o, t):\n        return 1", REFUSED),
    ("property", "class A:\n    @property\n    def x(self):\n        return 1", REFUSED),
    ("__del__ hook", "class A:\n    def __del__(self):\n        print('late')\nx = A()", REFUSED),
    (
        "__set_name__ hook",
        "class A:\n    def __set_name__(self, owner, name):\n        pass",
        REFUSED,
    ),
    (
        "__exit__ swallowing the policy error",
        "class S:\n    def __enter__(self):\n        return self\n"
        "    def __exit__(self, *a):\n        return True\nwith S():\n    import os",
        REFUSED,
    ),
    ("__init_subclass__", "class A:\n    def __init_subclass__(cls):\n        pass", REFUSED),
    (
        "metaclass",
        "import collections\nclass A(metaclass=collections.OrderedDict):\n    pass",
        REFUSED,
    ),
    ("type() builds a class", "T = type('T', (), {})", REFUSED),
    (
        "decorator on an allowed function",
        "import functools\n@functools.lru_cache\ndef f():\n    return 1\nresult = f()",
        CONTAINED,
    ),
    (
        "match on a dunder attribute",
        "match 1:\n    case int(__class__=c):\n        result = c",
        REFUSED,
    ),
    # SystemExit, KeyboardInterrupt, BaseException.
    ("SystemExit", "raise SystemExit(0)", REFUSED),
    ("KeyboardInterrupt", "raise KeyboardInterrupt", REFUSED),
    ("BaseException subclass", "class E(BaseException):\n    pass\nraise E()", REFUSED),
    (
        "bare except around a CPU bomb",
        "try:\n    while True:\n        pass\nexcept:\n    result = 'survived'",
        STOPPED,
    ),
    # Unicode-normalised identifiers (NFKC: the parser sees the ASCII names).
    ("fullwidth eval", "\uff45\uff56\uff41\uff4c('1 + 1')", REFUSED),
    ("fullwidth __import__", "__\uff49\uff4d\uff50\uff4f\uff52\uff54__('os')", REFUSED),
    ("fullwidth open", "\uff4f\uff50\uff45\uff4e('PATH').read()", REFUSED),
    ("fullwidth getattr", "get\uff41\uff54\uff54\uff52(1, 'real')", REFUSED),
    # Monkeypatching an allowed module or its classes.
    (
        "patch json.dumps",
        "import json\njson.dumps = lambda *a, **k: 'pwned'\nresult = {'a': 1}",
        REFUSED,
    ),
    (
        "patch a class attribute",
        "import fractions\nfractions.Fraction.limit_denominator = None",
        REFUSED,
    ),
    (
        "patch via an alias",
        "import fractions\nF = fractions.Fraction\nF.limit_denominator = None",
        CONTAINED,
    ),
    (
        "patch Counter via an alias",
        "import collections\nC = collections.Counter\nC.most_common = None",
        CONTAINED,
    ),
    # Memory and CPU bombs.
    ("power tower", "10 ** 10 ** 10", STOPPED),
    ("huge string", "x = 'a' * (10 ** 10)", STOPPED),
    ("huge list", "x = [0] * (10 ** 9)", STOPPED),
    ("catastrophic regex", "import re\nre.match(r'(a+)+$', 'a' * 40 + 'b')", STOPPED),
    ("loop in a function", "def f():\n    while True:\n        pass\nf()", STOPPED),
    (
        "loop catching its own limit",
        "n = 0\nwhile True:\n    try:\n        x = 'a' * (10 ** 10)\n    except MemoryError:\n        n += 1",
        STOPPED,
    ),
    ("infinite iterator", "import itertools\nresult = sum(itertools.count())", STOPPED),
    ("infinite recursion", "def f():\n    return f()\nf()", STOPPED),
    # Enormous or deeply nested results.
    ("50 MiB result", "result = 'x' * (50 * 2 ** 20)", STOPPED),
    (
        "100k-deep result",
        "result = []\nr = result\nfor i in range(100000):\n    r.append([])\n    r = r[0]",
        STOPPED,
    ),
    ("a million elements", "result = list(range(10 ** 6))", STOPPED),
    ("deeply nested source", "(" * 300 + ")" * 300, REFUSED),
    ("unary tower", "-" * 9990 + "1", REFUSED),
]

NUMPY_ATTACKS: list[tuple[str, str, str]] = [
    ("numpy.load", "import numpy as np\nnp.load('PATH')", REFUSED),
    ("numpy.fromfile", "import numpy as np\nnp.fromfile('PATH')", REFUSED),
    ("numpy.loadtxt", "import numpy as np\nnp.loadtxt('PATH')", REFUSED),
    ("numpy.genfromtxt", "import numpy as np\nf = np.genfromtxt", REFUSED),
    ("ndarray.tofile", "import numpy as np\nnp.arange(3).tofile('PATH')", REFUSED),
    ("numpy.save", "import numpy as np\nnp.save('PATH', np.zeros(2))", REFUSED),
    ("numpy.lib.npyio", "import numpy as np\nnp.lib.npyio.load('PATH')", REFUSED),
    ("numpy.DataSource", "import numpy as np\nnp.DataSource().open('PATH')", REFUSED),
    ("ndarray.ctypes", "import numpy as np\nresult = np.zeros(3).ctypes.data", REFUSED),
    ("numpy.lib via alias", "import numpy as np\nn = np\nresult = n.lib", CONTAINED),
    (
        "ndarray.ctypes through a class pattern",
        "import numpy as np\nmatch np.array([1]):\n    case np.ndarray(ctypes=c):\n        result = 1",
        REFUSED,
    ),
    ("numpy memory bomb", "import numpy as np\nx = np.ones(10 ** 10)", STOPPED),
]

# Programs the static check refuses, run straight in the child: the runtime layer alone.
UNCHECKED: list[tuple[str, str]] = [
    ("open", "result = open('READABLE').read()"),
    ("__import__ os", "result = __import__('os').environ['LOCKGATE_CANARY']"),
    ("import os", "import os\nresult = os.environ['LOCKGATE_CANARY']"),
    (
        "FileIO via subclasses",
        "io = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'FileIO'][0]\nresult = io('READABLE').read()",
    ),
    (
        "os via a class's globals",
        "w = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]\nresult = w.__init__.__globals__['environ']['LOCKGATE_CANARY']",
    ),
    ("frames of a generator", "g = (x for x in [1])\nresult = str(g.gi_frame.f_back.f_globals)"),
    ("module globals through print", "result = str(print.__self__.print.__func__.__globals__)"),
    (
        "datetime.sys",
        "import datetime\nresult = datetime.sys.modules['os'].environ['LOCKGATE_CANARY']",
    ),
    ("format walk", "result = '{0.__init__.__globals__}'.format(print.__self__)"),
    ("patch json", "import json\njson.dumps = lambda *a, **k: 'pwned'\nresult = {'a': 1}"),
    (
        # The runner reads a traceback with the audit hook down: a property of the program's
        # own must not run then (it read files and opened sockets when it could).
        "a __traceback__ property while the hook is down",
        "B = print.__func__.__globals__['builtins']\n"
        'B.exec("""\nimport sys\nNS = type(sys.implementation)\n'
        "class E(Exception):\n    @property\n    def __traceback__(self):\n"
        "        data = open('READABLE').read()\n"
        "        return NS(tb_frame=NS(f_code=NS(co_filename='<program>')), tb_lineno=data, tb_next=None)\n"
        "raise E('x')\n\"\"\", {'__builtins__': B})",
    ),
    (
        # After the program raised, the runner looked its own helpers up in its globals, which
        # the program could rebind: one of them was handed the switch of the audit hook.
        "rebinding the runner's helpers",
        "G = print.__func__.__globals__\n"
        "def evil(*args):\n"
        "    for arg in args[1:]:\n"
        "        try:\n            arg._state['active'] = False\n        except Exception:\n"
        "            pass\n"
        "    return G['builtins'].open('READABLE').read()\n"
        "G['_line_of'] = evil\nraise ValueError('x')",
    ),
    (
        "raw memory through ctypes' classes",
        "B = print.__func__.__globals__['builtins']\n"
        "found = [c for c in B.type.__subclasses__(B.object) if c.__name__ == 'CDLL']\n"
        "ct = found[0].__init__.__globals__\n"
        "cell = ct['c_ssize_t'](0)\nresult = ct['pointer'](cell)[-9] == B.id(ct['c_ssize_t'])",
    ),
]

# Modules through which a program that reached `sys.modules` could open a socket (a unix
# socket is not cut off by a network namespace), map or poke memory, or start a process.
DANGEROUS_MODULES = {"_socket", "socket", "_ctypes", "ctypes", "mmap", "select", "fcntl"} | {
    "_posixsubprocess",
    "subprocess",
    "_multiprocessing",
    "gc",
}


@pytest.fixture
def canary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.setenv("LOCKGATE_CANARY", CANARY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CANARY)
    beside = Path(runner.__file__).with_name(f"canary-{secrets.token_hex(4)}.txt")
    beside.write_text(CANARY)
    beside.chmod(0o600)
    READABLE.write_text(CANARY)
    READABLE.chmod(0o644)
    try:
        yield beside
    finally:
        beside.unlink()
        READABLE.unlink()


def _assert_contained(response: object, before: set[Path], cwd: str) -> None:
    assert CANARY not in json.dumps(response)
    assert os.environ["LOCKGATE_CANARY"] == CANARY
    assert os.getcwd() == cwd
    assert json.dumps({"a": 1}) == '{"a": 1}'
    assert workdirs() == before
    assert value("result = 6 * 7") == 42


def _attack(code: str, expected: str, path: Path) -> None:
    before, cwd = workdirs(), os.getcwd()
    response = call(code.replace("PATH", str(path)))
    _assert_contained(response, before, cwd)
    if expected == REFUSED:
        assert response["status"] == "error"
        assert response["error"]["kind"] == "validation"
        assert {"node", "line", "name"} <= set(response["error"]["details"])
    elif expected == STOPPED:
        assert response["status"] == "error"
        assert response["error"]["details"]["limit"] in {
            "time",
            "memory",
            "recursion",
            "result_size",
            "result_depth",
        }
    elif response["status"] == "ok":  # contained: it ran, harmlessly
        assert response["output"]["result"] in (None, 1, {"a": 1})
    else:
        assert "limit" not in response["error"]["details"]


@pytest.mark.usefixtures("fast_limits")
@pytest.mark.parametrize(
    ("code", "expected"), [(c, e) for _, c, e in ATTACKS], ids=[n for n, _, _ in ATTACKS]
)
def test_attack_is_refused_stopped_or_contained(canary: Path, code: str, expected: str) -> None:
    _attack(code, expected, canary)


@pytest.mark.parametrize(
    ("code", "expected"),
    [(c, e) for _, c, e in NUMPY_ATTACKS],
    ids=[n for n, _, _ in NUMPY_ATTACKS],
)
def test_numpy_attack_is_refused_stopped_or_contained(
    canary: Path, monkeypatch: pytest.MonkeyPatch, code: str, expected: str
) -> None:
    pytest.importorskip("numpy")
    monkeypatch.setenv("LOCKGATE_PYTHON_NUMERIC", "1")
    monkeypatch.setenv("LOCKGATE_PYTHON_CPU_SECONDS", "1")
    python_exec.sandbox_settings.cache_clear()
    try:
        _attack(code, expected, canary)
    finally:
        monkeypatch.undo()
        python_exec.sandbox_settings.cache_clear()


def test_the_corpus_covers_every_class() -> None:
    assert len(ATTACKS) + len(NUMPY_ATTACKS) >= 80
    assert {e for _, _, e in ATTACKS} == {REFUSED, STOPPED, CONTAINED}


@pytest.mark.parametrize("code", [c for _, c in UNCHECKED], ids=[n for n, _ in UNCHECKED])
def test_the_runtime_layer_holds_without_the_static_check(canary: Path, code: str) -> None:
    before, cwd = workdirs(), os.getcwd()
    code = code.replace("PATH", str(canary)).replace("READABLE", str(READABLE))
    outcome = run_program(code, None, SandboxSettings(cpu_seconds=1), allowlist())
    response = outcome.__dict__
    _assert_contained(response, before, cwd)
    assert isinstance(outcome, Ran | Failed)
    if "pointer" in code:  # no ctypes class is alive in the child to build one from
        assert isinstance(outcome, Failed)
    if "json.dumps" in code:  # the patched copy never reaches the runner's own json
        assert isinstance(outcome, Ran)
        assert outcome.result == {"a": 1}


def test_the_child_runs_without_environment_in_its_own_directory_and_network(canary: Path) -> None:
    # Given a program that spins, when we look at its process from outside while it runs,
    # then it has no environment, its own empty directory, and (as root) nobody's uid and
    # a network namespace of its own.
    seen: dict[str, object] = {}

    def child() -> Path | None:
        for proc in Path("/proc").iterdir():
            try:
                if str(RUNNER) in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    return proc
            except OSError:
                continue
        return None

    def watch() -> None:
        # Find the child, then keep the last view of it (it drops root just before the
        # program starts).
        deadline = time.monotonic() + 5
        proc = None
        while time.monotonic() < deadline and proc is None:
            proc = child()
        while proc is not None and time.monotonic() < deadline:
            try:
                view = {
                    "environ": (proc / "environ").read_bytes(),
                    "cwd": os.readlink(proc / "cwd"),
                    "uid": (proc / "status").read_text().split("Uid:")[1].split()[0],
                    "net": os.readlink(proc / "ns" / "net"),
                }
            except (OSError, IndexError):
                return
            seen.update(view)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    outcome = run_program(
        "while True:\n    pass", None, SandboxSettings(cpu_seconds=1), allowlist()
    )
    watcher.join()
    assert isinstance(outcome, Failed)
    assert outcome.limit == "time"
    assert seen["environ"] == b""
    assert Path(str(seen["cwd"])).name.startswith("lockgate-python-")
    assert not Path(str(seen["cwd"])).exists()  # removed afterwards
    if os.geteuid() == 0:
        assert seen["uid"] == str(runner.NOBODY)
        assert seen["net"] != os.readlink("/proc/self/ns/net")


def test_the_child_has_no_module_loaded_that_opens_sockets_or_memory() -> None:
    # Given a program that reached the runner's own globals (as if the static check had a
    # hole), when it lists what is loaded, then nothing there opens a socket or maps memory:
    # new imports are refused by the audit hook, so what is loaded is all it could use.
    code = "result = sorted(print.__func__.__globals__['sys'].modules)"
    outcome = run_program(code, None, SandboxSettings(cpu_seconds=1), allowlist())
    assert isinstance(outcome, Ran)
    assert isinstance(outcome.result, list)
    assert "sys" in outcome.result  # it did see the real module table
    assert not DANGEROUS_MODULES & set(outcome.result)


def test_no_class_of_a_dangerous_module_is_alive_in_the_child() -> None:
    # Unloading a module does not kill its classes: every live class is reachable from
    # `object` by way of `__subclasses__`. None may come from ctypes or a socket module.
    code = (
        "B = print.__func__.__globals__['builtins']\n"
        "seen, stack = set(), [B.object]\n"
        "while stack:\n"
        "    for sub in B.type.__subclasses__(stack.pop()):\n"
        "        if sub not in seen:\n"
        "            seen.add(sub)\n"
        "            stack.append(sub)\n"
        "result = sorted({str(c.__module__) for c in seen})"
    )
    outcome = run_program(code, None, SandboxSettings(cpu_seconds=1), allowlist())
    assert isinstance(outcome, Ran)
    assert isinstance(outcome.result, list)
    assert "builtins" in outcome.result
    assert not {m for m in outcome.result if str(m).split(".")[0] in DANGEROUS_MODULES}


def test_a_forged_answer_is_held_to_the_limits(canary: Path) -> None:
    # Given a program that writes an answer of its own to the runner's channel and exits,
    # then the parent still refuses a result over the size limit, and a malformed one.
    def forged(answer: dict[str, object]) -> str:
        return (
            "os = print.__func__.__globals__['sys'].modules['os']\n"
            f"os.write(1, {json.dumps(answer)!r}.encode())\n"
            "os._exit(0)"
        )

    settings = SandboxSettings(cpu_seconds=1)
    oversized = run_program(
        forged({"ok": True, "result": "x" * 330_000}), None, settings, allowlist()
    )
    assert isinstance(oversized, Failed)
    assert oversized.limit == "result_size"
    negative = run_program(
        forged({"ok": True, "result": 1, "run_ms": -1}), None, settings, allowlist()
    )
    assert isinstance(negative, Failed)
    assert negative.limit == "crash"


def test_a_child_that_ignores_its_cpu_signal_is_still_stopped_for_time() -> None:
    code = (
        "print.__func__.__globals__['sys'].modules['_signal'].signal(24, 1)\n"  # SIGXCPU ignored
        "while True:\n    pass"
    )
    outcome = run_program(code, None, SandboxSettings(cpu_seconds=1), allowlist())
    assert isinstance(outcome, Failed)
    assert outcome.limit == "time"
