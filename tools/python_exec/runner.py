"""The child side of python_exec: one checked program in this fresh process, then exit.

The sandbox starts this file as a script (`python -I -S -B runner.py`), writes one JSON
request to stdin and reads one JSON response from stdout. It imports only the standard
library. Before the program runs, in this order:

1. the request is read and stdin closed; the allowed modules are imported (and their lazy
   imports warmed) while files can still be read;
2. the network is cut (a new network namespace: as root directly, otherwise inside a new
   user namespace where the kernel allows one), and root drops to `nobody`;
3. resource limits: CPU seconds (the kernel kills the process at the limit, wherever it is,
   even inside a regular expression or a big-integer power), address space, no new files,
   no new processes, no core dumps;
4. an audit hook with no switch refuses, from then on, every file open, import, process,
   socket, ctypes call, frame access and change to a class of the allowed modules;
5. the program sees copies of the allowed modules holding only their public, non-module
   names, restricted builtins, and `print` writing into a capped buffer.

The parent checks the program's AST against the same allowlist before this process exists
(`tools.python_exec.policy`); this file is the second layer, for anything that check missed.
The parent also imports this module for its constants, so nothing here runs on import.
"""

from __future__ import annotations

import _ast
import builtins
import functools
import json
import math
import resource
import sys
import time
import types

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the child milliseconds

if TYPE_CHECKING:  # the child imports as little as it can: it starts once per program
    from collections.abc import Iterable, Mapping
    from typing import Any

STANDARD_MODULES = (
    "math",
    "statistics",
    "json",
    "datetime",
    "decimal",
    "fractions",
    "itertools",
    "functools",
    "collections",
    "re",
    "string",
    "random",
)
# Behind the deployment's numeric flag, from their own layer.
NUMERIC_MODULES = ("numpy", "pandas")
# Submodules reachable as attributes (`np.linalg.norm`); every other module attribute is hidden.
SUBMODULES: Mapping[str, tuple[str, ...]] = {"numpy": ("linalg", "random", "fft")}

# Public members refused anyway: file and pickle I/O, expression evaluation, attribute-walking
# formatters, memory views of raw buffers.
REFUSED_MEMBERS: Mapping[str, frozenset[str]] = {
    "string": frozenset({"Formatter"}),
    # They copy attributes named by strings (`updated=("__globals__",)`): getattr in disguise.
    "functools": frozenset(
        {"update_wrapper", "wraps", "WRAPPER_ASSIGNMENTS", "WRAPPER_UPDATES"}
        # Stores into an instance under a name it holds as a writable string: setattr again.
        | {"cached_property"}
    ),
    "numpy": frozenset(
        {"load", "loads", "fromfile", "fromregex", "genfromtxt", "loadtxt", "memmap"}
        | {"save", "savez", "savez_compressed", "savetxt", "tofile", "DataSource"}
        | {"frombuffer", "from_dlpack", "ctypeslib", "lib", "show_config", "info"}
    ),
    "pandas": frozenset(
        {"eval", "HDFStore", "ExcelWriter", "ExcelFile", "read_pickle", "to_pickle"}
        | {"set_option", "option_context", "show_versions", "api", "io", "plotting"}
    ),
}
REFUSED_MEMBER_PREFIXES: Mapping[str, tuple[str, ...]] = {"pandas": ("read_",)}

# The builtins a program may use. Everything else (eval, exec, compile, open, getattr and its
# family, globals, vars, locals, type, object, super, breakpoint, input, help, id, dir...) is
# simply absent.
SAFE_BUILTINS = (
    "abs", "all", "any", "ascii", "bin", "bool", "bytes", "callable", "chr", "complex", "dict",
    "divmod", "enumerate", "filter", "float", "format", "frozenset", "hash", "hex", "int",
    "isinstance", "issubclass", "iter", "len", "list", "map", "max", "min", "next", "oct",
    "ord", "pow", "range", "repr", "reversed", "round", "set", "slice", "sorted", "str", "sum",
    "tuple", "zip", "bytearray",
    # Exceptions a program may raise and catch: Exception and below, never BaseException,
    # SystemExit, KeyboardInterrupt or GeneratorExit.
    "Exception", "ArithmeticError", "AssertionError", "AttributeError", "IndexError",
    "KeyError", "LookupError", "NameError", "NotImplementedError", "OverflowError",
    "RecursionError", "RuntimeError", "StopIteration", "TypeError", "UnicodeError",
    "ValueError", "ZeroDivisionError", "MemoryError",
    "NotImplemented", "Ellipsis",
)  # fmt: skip

# Names the program itself may never bind or read: the runner's own.
INTERNAL_PREFIX = "_lockgate"
PROGRAM_MODULE = "__lockgate__"
FILENAME = "<program>"
_LAST = "_lockgate_last"

# Audit events refused once the program starts (prefixes end with a dot).
_REFUSED_EVENTS = (
    "open", "import", "code.__new__", "function.__new__",
    "sys._getframe", "sys._current_frames", "gc.", "sys._current_exceptions", "sys.settrace",
    "sys.setprofile", "sys.addaudithook", "sys.excepthook", "sys.unraisablehook",
    "object.__getattr__", "builtins.input", "builtins.breakpoint", "marshal.", "pickle.",
    "os.", "subprocess.", "socket.", "ctypes.", "shutil.", "glob.", "urllib.", "http.",
    "ftplib.", "smtplib.", "poplib.", "imaplib.", "telnetlib.", "webbrowser.", "mmap.",
    "resource.", "signal.", "fcntl.", "msvcrt.", "winreg.", "_winapi.", "syslog.", "sqlite3.",
)  # fmt: skip
_CLASS_CHANGES = ("object.__setattr__", "object.__delattr__")

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
NOBODY = 65534


class Limit(Exception):  # a limit, not an error of the runner
    """A limit the program reached: which, and the message for the model."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


def public_names(module: Any, name: str) -> dict[str, Any]:
    """The members of an allowed module a program may use, by name.

    Public (no leading underscore), not a module (so no path to `sys` or `os` through an
    allowed module), not refused; allowed submodules as namespaces of their own members.
    """
    refused = REFUSED_MEMBERS.get(name, frozenset())
    prefixes = REFUSED_MEMBER_PREFIXES.get(name, ())
    members: dict[str, Any] = {}
    for attribute in dir(module):
        if attribute.startswith("_") or attribute in refused or attribute.startswith(prefixes):
            continue
        try:
            value = getattr(module, attribute)
        except Exception:  # noqa: S112  # a lazy attribute that cannot load is not offered
            continue
        if isinstance(value, types.ModuleType):
            if attribute in SUBMODULES.get(name, ()):
                members[attribute] = types.SimpleNamespace(
                    **public_names(value, f"{name}.{attribute}")
                )
            continue
        members[attribute] = value
    return members


def _classes(namespaces: Iterable[types.SimpleNamespace]) -> Iterable[int]:
    """The ids of every class a program can reach in the allowed modules (not to be patched)."""
    for namespace in namespaces:
        for member in vars(namespace).values():
            if isinstance(member, type):
                yield id(member)
            elif isinstance(member, types.SimpleNamespace):
                yield from _classes([member])


def _warm(modules: Mapping[str, Any]) -> None:
    """Run once what loads lazily, so no import is needed after imports are refused."""
    if "datetime" in modules:
        modules["datetime"].datetime.strptime("2000-01-02", "%Y-%m-%d")
    if "re" in modules:
        modules["re"].compile(r"(?i)\w+\d*").sub("", "A1")
    if "json" in modules:
        modules["json"].dumps({"a": [1, 2.5, None]}, indent=1, sort_keys=True)
    if "decimal" in modules:
        decimal = modules["decimal"]
        decimal.Decimal("1.10").quantize(decimal.Decimal("0.1"))
    if "random" in modules:
        modules["random"].Random(1).random()
    if "collections" in modules:
        modules["collections"].namedtuple("Pair", "a b")(1, 2)
        modules["collections"].Counter("aab").most_common(1)
    if "functools" in modules:
        modules["functools"].singledispatch(len)
    if "statistics" in modules:
        statistics = modules["statistics"]
        statistics.NormalDist(0.0, 1.0).cdf(0.5)
        statistics.linear_regression([1.0, 2.0, 3.0], [2.0, 4.0, 6.5])
    if "numpy" in modules:
        numpy = modules["numpy"]
        array = numpy.arange(6.0).reshape(2, 3)
        numpy.linalg.norm(array)
        numpy.random.default_rng(0).random(2)
        array.tolist()
        str(array)
    if "pandas" in modules:
        pandas = modules["pandas"]
        frame = pandas.DataFrame({"a": [1, 2], "b": ["x", "y"]})
        frame.groupby("b").sum().to_dict()
        str(frame)


def _cut_network() -> str:
    """A network namespace of our own: only a loopback interface that is down.

    Only through `os.unshare` (Python 3.12+, the Lambda runtime's). Never through ctypes: a
    program that reached ctypes' classes, which outlive any attempt to unload them, could read
    and write this process's memory. Where `os.unshare` is missing the parent may have started
    this process in a new namespace already (`request["network"]`).
    """
    import os

    flags = CLONE_NEWNET if _is_root() else CLONE_NEWUSER | CLONE_NEWNET
    unshare = getattr(os, "unshare", None)
    if unshare is None:
        return "unavailable"
    try:
        unshare(flags)
    except OSError:
        return "unavailable"
    return "namespace"


def _is_root() -> bool:
    import os

    return os.geteuid() == 0


def _drop_root() -> bool:
    import os

    if os.geteuid() != 0:
        return False
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    return True


def _memory_in_use() -> int:
    """Bytes of address space this process maps now (read before root is dropped: the kernel
    then hands /proc/self to root)."""
    with open("/proc/self/statm", "rb") as statm:  # before opens are refused
        return int(statm.read().split()[0]) * resource.getpagesize()


def _limit(cpu_seconds: int, memory_bytes: int, in_use: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (in_use + memory_bytes, in_use + memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (8, 8))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _install_guard(classes: frozenset[int]) -> None:
    """Refuse the audit events above from now on, and changes to the classes in `classes`.

    An audit hook cannot be removed, and this one has no switch: nothing stands it down, not
    even for the runner, so no program code can ever run while it is off, and a program that
    reached the runner's own globals finds nothing there that would turn it off.
    """

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event.startswith(_REFUSED_EVENTS):
            raise RuntimeError(f"{event} is not allowed here")
        if event in _CLASS_CHANGES and id(args[0]) in classes:
            raise RuntimeError("changing a class of an allowed module is not allowed")

    sys.addaudithook(hook)


class _Output:
    """`print` for the program: text into a buffer that stops growing at the cap."""

    def __init__(self, cap: int) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.cap = cap
        self.truncated = False

    def print(self, *values: object, sep: str | None = " ", end: str | None = "\n") -> None:
        sep = " " if sep is None else sep
        end = "\n" if end is None else end
        if type(sep) is not str or type(end) is not str:
            raise TypeError("sep and end must be strings")
        if self.truncated:
            return
        text = sep.join(str(value) for value in values) + end
        room = self.cap - self.size
        if len(text) > room:
            text = text[:room]
            self.truncated = True
        self.parts.append(text)
        self.size += len(text)

    def text(self) -> str:
        return "".join(self.parts)


class _Importer:
    """`__import__` for the program: the namespaces of allowed modules, nothing else.

    The interpreter's own C code imports through the running frame's `__import__` too
    (`PyImport_Import`, e.g. `datetime.strptime` or a numpy method); it passes a list as
    `fromlist` and uses the module from `sys.modules`, not the value returned. Those calls get
    the module when it is already loaded (no file is read): the program itself cannot call
    this function, only `import` statements do, and those pass a tuple or None.
    """

    def __init__(self, namespaces: Mapping[str, types.SimpleNamespace]) -> None:
        self.namespaces = namespaces

    def __call__(
        self,
        name: str,
        globals: object = None,  # the signature of __import__
        locals: object = None,
        fromlist: Iterable[str] | None = (),
        level: int = 0,
    ) -> object:
        if level == 0 and name in self.namespaces:
            return self.namespaces[name]
        if level == 0 and type(fromlist) is list and name in sys.modules:
            return sys.modules[name]
        raise ImportError(f"module {name!r} is not available")


_ONLY_AST = 0x400  # ast.PyCF_ONLY_AST, without importing the ast module


def _program(code: str) -> types.CodeType:
    """Compile the program, its last expression (if any) kept as a value."""
    tree = compile(code, FILENAME, "exec", flags=_ONLY_AST, dont_inherit=True)
    if tree.body and isinstance(tree.body[-1], _ast.Expr):
        last = tree.body[-1]
        target = _ast.Name(id=_LAST, ctx=_ast.Store())
        assign = _ast.Assign(targets=[target], value=last.value)
        for node in (target, assign):
            node.lineno, node.col_offset = last.lineno, last.col_offset
            node.end_lineno, node.end_col_offset = last.end_lineno, last.end_col_offset
        tree.body[-1] = assign
    code_object: types.CodeType = compile(tree, FILENAME, "exec", dont_inherit=True)
    return code_object


class _Result:
    """The program's value as JSON, refused past a depth or size, without running its code.

    Only exact built-in behaviour is used (`dict.items(v)`, `datetime.date.isoformat(v)`):
    a subclass the program defined cannot run anything here, since it cannot define special
    methods and its ordinary methods are never called.
    """

    def __init__(self, max_depth: int, max_items: int) -> None:
        self.max_depth = max_depth
        self.items_left = max_items
        # Only a module the program imported can have made one of its values.
        self.decimal = sys.modules.get("decimal")
        self.fractions = sys.modules.get("fractions")
        self.datetime = sys.modules.get("datetime")
        self.numpy = sys.modules.get("numpy")
        self.pandas = sys.modules.get("pandas")

    def convert(self, value: Any, depth: int = 1) -> Any:
        if depth > self.max_depth:
            raise Limit("result_depth", f"the result is nested deeper than {self.max_depth} levels")
        self.items_left -= 1
        if self.items_left < 0:
            raise Limit("result_size", "the result has too many elements; return a summary")
        if value is None or isinstance(value, bool):
            return None if value is None else bool(value)
        if isinstance(value, int):
            return int.__int__(value)
        if isinstance(value, float):
            number = float.__float__(value)
            return number if math.isfinite(number) else repr(number)
        if isinstance(value, str):
            return str.__str__(value)
        text = self.text(value)
        if text is not None:
            return text
        if isinstance(value, dict):
            return {self.key(key): self.convert(item, depth + 1) for key, item in dict.items(value)}
        if isinstance(value, list | tuple):
            return [self.convert(item, depth + 1) for item in tuple(value)]
        if isinstance(value, set | frozenset):
            items = [self.convert(item, depth + 1) for item in frozenset(value)]
            try:
                return sorted(items)
            except TypeError:
                return items
        numeric = self.numeric(value)
        if numeric is not None:
            return self.convert(numeric, depth)
        raise TypeError(
            f"the result must be JSON-like (numbers, strings, lists, dicts, dates); "
            f"got {type(value).__name__}"
        )

    def text(self, value: Any) -> str | None:
        """Decimals, fractions and dates, as text."""
        decimal, fractions, datetime = self.decimal, self.fractions, self.datetime
        if decimal is not None and isinstance(value, decimal.Decimal):
            return str(decimal.Decimal.__str__(value))
        if fractions is not None and isinstance(value, fractions.Fraction):
            return f"{int.__int__(value.numerator)}/{int.__int__(value.denominator)}"
        if datetime is not None:
            if isinstance(value, datetime.datetime):
                return str(datetime.datetime.isoformat(value))
            if isinstance(value, datetime.date):
                return str(datetime.date.isoformat(value))
            if isinstance(value, datetime.time):
                return str(datetime.time.isoformat(value))
            if isinstance(value, datetime.timedelta):
                return str(datetime.timedelta.__str__(value))
        return None

    def numeric(self, value: Any) -> Any:
        numpy, pandas = self.numpy, self.pandas
        if numpy is not None:
            if isinstance(value, numpy.ndarray):
                if value.size > self.items_left:
                    raise Limit("result_size", "the result array is too large; return a summary")
                return numpy.ndarray.tolist(value)
            if isinstance(value, numpy.generic):
                return numpy.generic.item(value)
        if pandas is not None:
            if isinstance(value, pandas.DataFrame):
                if value.size > self.items_left:
                    raise Limit("result_size", "the result table is too large; return a summary")
                return pandas.DataFrame.to_dict(value, orient="records")
            if isinstance(value, pandas.Series):
                return pandas.Series.to_dict(value)
        return None

    def key(self, key: Any) -> str:
        if isinstance(key, str):
            return str.__str__(key)
        if key is None or isinstance(key, bool | int | float):
            return json.dumps(self.convert(key))
        converted = self.convert(key)
        if isinstance(converted, str):
            return converted
        raise TypeError(f"dict keys in the result must be strings; got {type(key).__name__}")


def _failure(kind: str, message: str, **details: Any) -> dict[str, Any]:
    return {"ok": False, "error": {"kind": kind, "message": message, "details": details}}


_TRACEBACK = BaseException.__dict__["__traceback__"]


def _line_of(exc: BaseException) -> int | None:
    """The line of the program's own statement the exception came out of.

    Without reading frames (the audit hook refuses them, to the runner as to the program): the
    traceback's first entry is the runner's `exec`, the second the program's top level. An
    error inside a function of the program is reported at the statement that called it.
    """
    tb = _TRACEBACK.__get__(exc, BaseException)
    if type(tb) is not types.TracebackType:
        return None
    program = tb.tb_next
    if type(program) is not types.TracebackType or type(program.tb_lineno) is not int:
        return None
    return program.tb_lineno


def run(request: Mapping[str, Any]) -> dict[str, Any]:
    """Prepare this process, run the program once and describe what happened."""
    code: str = request["code"]
    names: list[str] = list(request["modules"])
    for path in request.get("paths", ()):
        sys.path.append(path)
    modules = {name: __import__(name) for name in names}
    _warm(modules)
    namespaces = {
        name: types.SimpleNamespace(**public_names(module, name))
        for name, module in modules.items()
    }
    if "collections" in namespaces:
        # Given its module, namedtuple does not look up its caller's frame (which is refused).
        namespaces["collections"].namedtuple = functools.partial(
            modules["collections"].namedtuple, module=PROGRAM_MODULE
        )
    classes = frozenset(_classes(namespaces.values()))
    program = _program(code)
    output = _Output(int(request["max_stdout_chars"]))
    safe: dict[str, Any] = {name: getattr(builtins, name) for name in SAFE_BUILTINS}
    safe["print"] = output.print
    safe["__import__"] = _Importer(namespaces)
    safe["__build_class__"] = builtins.__build_class__
    scope: dict[str, Any] = {
        "__builtins__": safe,
        "__name__": PROGRAM_MODULE,
        "inputs": request.get("inputs"),
    }
    network = str(request.get("network", ""))
    isolation = {"network": network if network == "namespace" else _cut_network()}
    in_use = _memory_in_use()
    isolation["user"] = "nobody" if _drop_root() else "unchanged"
    _limit(int(request["cpu_seconds"]), int(request["memory_bytes"]), in_use)
    _install_guard(classes)
    started = time.perf_counter()
    try:
        exec(program, scope)  # noqa: S102  # the checked program, in this disposable process
    except MemoryError:
        return _failure("limit", "the program ran out of memory", limit="memory")
    except RecursionError as exc:
        return _failure(
            "limit",
            "the program recursed too deeply",
            limit="recursion",
            line=_line_of(exc),
        )
    except Exception as exc:
        return _failure("error", _text(exc), error=type(exc).__name__, line=_line_of(exc))
    run_ms = (time.perf_counter() - started) * 1000
    value = scope.get("result", scope.get(_LAST))
    try:
        result = _Result(int(request["max_result_depth"]), int(request["max_result_items"]))
        converted = result.convert(value)
        encoded = json.dumps(converted, ensure_ascii=False, separators=(",", ":"))
    except Limit as limit:
        return _failure("limit", str(limit), limit=limit.limit)
    except (TypeError, ValueError) as exc:
        return _failure("error", _text(exc), error=type(exc).__name__, line=None)
    except MemoryError:
        return _failure("limit", "the result does not fit in memory", limit="memory")
    if len(encoded) > int(request["max_result_chars"]):
        return _failure(
            "limit",
            f"the result is longer than {request['max_result_chars']} characters as JSON; "
            "return a summary",
            limit="result_size",
        )
    return {
        "ok": True,
        "result": converted,
        "stdout": output.text(),
        "stdout_truncated": output.truncated,
        "run_ms": run_ms,
        "isolation": isolation,
    }


def _text(exc: BaseException) -> str:
    try:
        message = BaseException.__str__(exc)
    except Exception:
        message = ""
    message = message[:500]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def main() -> None:
    """Read the request, run, write the response, exit."""
    out = sys.stdout
    request = json.loads(sys.stdin.read())
    sys.stdin.close()
    try:
        response = run(request)
    except MemoryError:
        response = _failure("limit", "the program ran out of memory", limit="memory")
    except SyntaxError as exc:
        response = _failure(
            "error", f"SyntaxError: {exc.msg}", error="SyntaxError", line=exc.lineno
        )
    except (RecursionError, ValueError) as exc:  # a program too deeply nested to compile
        response = _failure("error", _text(exc), error=type(exc).__name__, line=None)
    out.write(json.dumps(response, ensure_ascii=False, separators=(",", ":")))
    out.flush()


if __name__ == "__main__":
    main()
