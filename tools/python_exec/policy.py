"""The static check: a program's AST against the allowlist, before any of it runs.

Every node is visited (iteratively: a deeply nested program cannot exhaust the checker's
stack). A program is refused, with a message written for the model (what, where, and what to
use instead), when it:
- imports a module that is not allowed, a submodule, `*`, or relatively;
- names anything starting with two underscores (dunders, mangled names) or the runner's own
  names, or reads an attribute starting with an underscore;
- uses a builtin that is absent by design (`eval`, `exec`, `compile`, `open`, the `getattr`
  family, `globals`, `vars`, `locals`, `type`, `breakpoint`, `input`...);
- reaches interpreter internals through ordinary-looking attributes (frames, code, generator
  and coroutine state, tracebacks, `mro`);
- formats with `str.format`/`format_map` (a format string can walk attributes: f-strings, whose
  expressions are checked here like any other, do the same job);
- uses a module member that is not public, is a module, or is refused (file, pickle and
  expression-evaluation entry points of numpy and pandas), or writes a table to a path;
- assigns to or deletes an attribute of an allowed module (monkeypatching);
- declares `global`/`nonlocal`, `async` code, or a class with keywords (a metaclass).

The child process enforces the same allowlist again at run time (`runner`): this check gives
the model a precise refusal; the process is what makes a missed case harmless.
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib
import importlib.util
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tools.python_exec.runner import (
    INTERNAL_PREFIX,
    NUMERIC_MODULES,
    SAFE_BUILTINS,
    STANDARD_MODULES,
    SUBMODULES,
    public_names,
)

# Builtins that are absent by design, with what to do instead.
_ABSENT = {
    "open": "there are no files: pass data in `inputs` or write it in the program",
    "eval": "write the expression as code",
    "exec": "write the code itself",
    "compile": "write the code itself",
    "getattr": "use the attribute directly (obj.name)",
    "setattr": "assign the attribute directly (obj.name = value)",
    "delattr": "delete the attribute directly",
    "hasattr": "use a dict and `in`",
    "globals": "use your own variables or a dict",
    "locals": "use your own variables or a dict",
    "vars": "use your own variables or a dict",
    "dir": "use the names you know",
    "type": "use isinstance()",
    "object": "define a plain class",
    "super": "call the other class's method directly",
    "breakpoint": "use print()",
    "input": "pass data in `inputs`",
    "help": "use the names you know",
    "id": "compare with == or `is`",
    "memoryview": "use bytes or lists",
    "exit": "end the program normally",
    "quit": "end the program normally",
    "classmethod": "use a plain function",
    "staticmethod": "use a plain function",
    "property": "use a plain method",
    "BaseException": "use Exception",
    "SystemExit": "end the program normally",
    "KeyboardInterrupt": "use Exception",
    "GeneratorExit": "use Exception",
}
# Attributes that reach interpreter internals without underscores.
_INTERNAL_ATTRIBUTE = re.compile(r"^(gi|cr|ag|f|tb|co)_|^(mro|with_traceback)$")
# Public API despite the underscore (named tuples).
_PUBLIC_UNDERSCORE = frozenset({"_asdict", "_replace", "_fields", "_make", "_field_defaults"})
_FORMATTERS = frozenset({"format", "format_map"})
# Table and array methods that read or write files, pickle, or evaluate expressions.
_REFUSED_METHODS = frozenset(
    {"tofile", "dump", "to_pickle", "to_parquet", "to_excel", "to_hdf", "to_sql", "to_feather"}
    | {"to_stata", "to_orc", "to_clipboard", "eval", "query", "ctypes", "load", "loadtxt"}
    | {"fromfile", "save", "savetxt", "memmap", "exec", "compile"}
)
# A string that is exactly a dunder name is an attribute lookup waiting to happen.
_DUNDER_TEXT = re.compile(r"^__\w+__$")
# Writers that return text when given no path, and write a file when given one.
_PATH_WRITERS = frozenset(
    {"to_csv", "to_json", "to_markdown", "to_string", "to_html", "to_latex", "to_xml"}
)
_PATH_KEYWORDS = frozenset({"path_or_buf", "buf", "path", "excel_writer"})
_REFUSED_NODES: Mapping[type[ast.AST], str] = {
    ast.Global: "`global` is not allowed: return values from functions instead",
    ast.Nonlocal: "`nonlocal` is not allowed: return values from functions instead",
    ast.AsyncFunctionDef: "async code is not allowed: write ordinary functions",
    ast.AsyncFor: "async code is not allowed: use a plain for loop",
    ast.AsyncWith: "async code is not allowed: use a plain with statement",
    ast.Await: "async code is not allowed: call functions directly",
}


@dataclass(frozen=True)
class Refusal:
    """Why a program may not run, for the model: `message` says it all, the rest locates it."""

    message: str
    node: str
    line: int
    column: int
    name: str
    allowed: tuple[str, ...] = ()

    def details(self) -> dict[str, Any]:
        """The refusal as the error's details."""
        details: dict[str, Any] = {
            "node": self.node,
            "line": self.line,
            "column": self.column,
            "name": self.name,
        }
        if self.allowed:
            details["allowed"] = list(self.allowed)
        return details


@dataclass(frozen=True)
class Allowlist:
    """The modules one deployment offers, the members of each a program may use, and where
    the child finds those outside the standard library (numpy, pandas)."""

    modules: tuple[str, ...]
    members: Mapping[str, frozenset[str]] = field(repr=False)
    paths: Mapping[str, tuple[str, ...]] = field(default_factory=dict, repr=False)

    def only(self, names: frozenset[str]) -> Allowlist:
        """This allowlist narrowed to the modules in `names` (those a program imports)."""
        kept = tuple(name for name in self.modules if name in names)
        members = {k: v for k, v in self.members.items() if k.split(".")[0] in kept}
        return Allowlist(kept, members, {k: v for k, v in self.paths.items() if k in kept})

    def module_paths(self) -> tuple[str, ...]:
        """The directories the child adds to its path for these modules."""
        return tuple(
            dict.fromkeys(path for name in self.modules for path in self.paths.get(name, ()))
        )


@functools.cache
def allowlist(numeric: bool = False) -> Allowlist:
    """The allowlist: the standard modules, plus numpy and pandas when `numeric` is on and
    they are installed (each member set computed from the module itself, as the child does)."""
    names = list(STANDARD_MODULES)
    if numeric:
        names.extend(n for n in NUMERIC_MODULES if importlib.util.find_spec(n) is not None)
    members: dict[str, frozenset[str]] = {}
    paths: dict[str, tuple[str, ...]] = {}
    for name in names:
        module = importlib.import_module(name)
        public = public_names(module, name)
        members[name] = frozenset(public)
        for sub in SUBMODULES.get(name, ()):
            if sub in public:
                members[f"{name}.{sub}"] = frozenset(vars(public[sub]))
        if name not in STANDARD_MODULES:  # a package's parent directory: site-packages
            paths[name] = tuple(str(p).rsplit("/", 1)[0] for p in module.__path__)
    return Allowlist(tuple(names), members, paths)


def check(code: str, allowed: Allowlist) -> Refusal | None:
    """The first rule the program breaks, or None when it may run."""
    try:
        tree = ast.parse(code, filename="<program>", mode="exec")
    except SyntaxError as exc:
        return Refusal(
            message=f"line {exc.lineno}: the program is not valid Python: {exc.msg}",
            node="SyntaxError",
            line=exc.lineno or 0,
            column=exc.offset or 0,
            name="",
        )
    except (MemoryError, RecursionError, ValueError) as exc:
        reason = "contains a null byte" if isinstance(exc, ValueError) else "is nested too deeply"
        return Refusal(
            message=f"the program {reason}; write it more simply",
            node="SyntaxError",
            line=0,
            column=0,
            name="",
        )
    return _Checker(allowed, _module_aliases(tree)).first_problem(tree)


def modules_used(code: str) -> frozenset[str]:
    """The top-level modules a (checked) program imports: all the child needs to load."""
    try:
        tree = ast.parse(code, filename="<program>", mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset()  # the child reports the error itself
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            used.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            used.add(node.module.split(".")[0])
    return frozenset(used)


def _module_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> allowed module name, for every `import m [as a]` in the program whose name
    nothing else binds (a name also assigned may hold anything, so it gets the general rules)."""
    aliases: dict[str, str] = {}
    rebound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.Name):
            if not isinstance(node.ctx, ast.Load):
                rebound.add(node.id)
        elif isinstance(node, ast.ImportFrom):
            rebound.update(alias.asname or alias.name for alias in node.names)
        elif not isinstance(node, ast.alias):  # an import's own names are seen above
            rebound.update(name for name, is_attribute in _identifiers(node) if not is_attribute)
    return {name: module for name, module in aliases.items() if name not in rebound}


class _Checker:
    def __init__(self, allowed: Allowlist, aliases: Mapping[str, str]) -> None:
        self.allowed = allowed
        self.aliases = aliases

    def first_problem(self, tree: ast.AST) -> Refusal | None:
        for node in ast.walk(tree):
            problem = self.problem(node)
            if problem is not None:
                return problem
        return None

    def problem(self, node: ast.AST) -> Refusal | None:
        refused = _REFUSED_NODES.get(type(node))
        if refused is not None:
            return _refusal(node, refused, "")
        for name, is_attribute in _identifiers(node):
            problem = _name_problem(node, name, is_attribute=is_attribute)
            if problem is not None:
                return problem
        if isinstance(node, ast.Import):
            return self.import_problem(node)
        if isinstance(node, ast.ImportFrom):
            return self.import_from_problem(node)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in _ABSENT:
            return _refusal(
                node,
                f"`{node.id}` is not available: {_ABSENT[node.id]}",
                node.id,
            )
        if isinstance(node, ast.Attribute):
            return self.attribute_problem(node)
        if isinstance(node, ast.Call):
            return _call_problem(node)
        return _shape_problem(node)

    def import_problem(self, node: ast.Import) -> Refusal | None:
        for alias in node.names:
            if alias.name not in self.allowed.modules:
                return self.module_refusal(node, alias.name)
        return None

    def import_from_problem(self, node: ast.ImportFrom) -> Refusal | None:
        module = node.module or ""
        if node.level or module not in self.allowed.modules:
            return self.module_refusal(node, "." * node.level + module)
        for alias in node.names:
            if alias.name == "*":
                return _refusal(
                    node,
                    f"`from {module} import *` is not allowed: import the names you use",
                    "*",
                )
            if alias.name not in self.allowed.members[module]:
                return self.member_refusal(node, module, alias.name)
        return None

    def module_refusal(self, node: ast.stmt, name: str) -> Refusal:
        modules = self.allowed.modules
        if name.split(".", maxsplit=1)[0] in modules:
            reason = f"import `{name.split('.', maxsplit=1)[0]}` and use its attributes"
        elif name in NUMERIC_MODULES:
            reason = f"{name} is not enabled in this deployment"
        else:
            reason = "programs run without files, network or processes"
        return _refusal(
            node,
            f"`import {name}` is not allowed: {reason}. Allowed modules: {', '.join(modules)}",
            name,
            modules,
        )

    def attribute_problem(self, node: ast.Attribute) -> Refusal | None:
        root = self.root_module(node)
        if root is not None and not isinstance(node.ctx, ast.Load):
            return _refusal(
                node,
                f"changing `{root}...{node.attr}` is not allowed: modules and their classes are "
                "read-only; use a variable of your own",
                node.attr,
            )
        module = self.module_of(node.value)
        if module is not None:
            if node.attr not in self.allowed.members[module]:
                return self.member_refusal(node, module, node.attr)
            return None
        return _attribute_name_problem(node, node.attr)

    def module_of(self, node: ast.expr) -> str | None:
        """The allowed module (or submodule) an expression names, if it is one."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            parent = self.module_of(node.value) if isinstance(node.value, ast.Name) else None
            dotted = f"{parent}.{node.attr}" if parent else None
            if dotted in self.allowed.members:
                return dotted
        return None

    def root_module(self, node: ast.Attribute) -> str | None:
        """The allowed module an attribute chain starts from (`json` in `json.x.y`), if any."""
        value: ast.expr = node
        while isinstance(value, ast.Attribute):
            value = value.value
        return self.aliases.get(value.id) if isinstance(value, ast.Name) else None

    def member_refusal(self, node: ast.AST, module: str, name: str) -> Refusal:
        members = sorted(self.allowed.members[module])
        close = difflib.get_close_matches(name, members, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        return _refusal(
            node,
            f"`{module}.{name}` is not available: only public functions, classes and "
            f"constants of {module} may be used.{hint}",
            name,
            tuple(close),
        )


def _identifiers(node: ast.AST) -> Iterator[tuple[str, bool]]:
    """Every identifier a node introduces or uses, and whether it is an attribute name."""
    if isinstance(node, ast.Name):
        yield node.id, False
    elif isinstance(node, ast.Attribute):
        yield node.attr, True
    elif isinstance(node, ast.FunctionDef | ast.ClassDef):
        yield node.name, False
    elif isinstance(node, ast.arg | ast.keyword):
        if node.arg is not None:
            yield node.arg, False
    elif isinstance(node, ast.alias):
        yield node.name, False
        if node.asname:
            yield node.asname, False
    elif (isinstance(node, ast.ExceptHandler) and node.name) or (
        isinstance(node, ast.MatchAs | ast.MatchStar) and node.name
    ):
        yield node.name, False
    elif isinstance(node, ast.MatchMapping) and node.rest:
        yield node.rest, False
    elif isinstance(node, ast.MatchClass):
        for attribute in node.kwd_attrs:
            yield attribute, True
    elif isinstance(node, ast.ImportFrom) and node.module:
        yield node.module, False


def _name_problem(node: ast.AST, name: str, *, is_attribute: bool) -> Refusal | None:
    if name.startswith("__") or name.lower().startswith(INTERNAL_PREFIX):
        what = "attribute" if is_attribute else "name"
        return _refusal(
            node,
            f"the {what} `{name}` is not allowed: names starting with two underscores are "
            "interpreter internals; use ordinary names",
            name,
        )
    if is_attribute and name.startswith("_") and name not in _PUBLIC_UNDERSCORE:
        return _refusal(
            node,
            f"the attribute `{name}` is not allowed: attributes starting with an underscore "
            "are private; use the public API",
            name,
        )
    if is_attribute and _INTERNAL_ATTRIBUTE.search(name):
        return _refusal(
            node,
            f"the attribute `{name}` is not allowed: it reaches interpreter internals "
            "(frames, code, generator state); name your own attributes differently",
            name,
        )
    return None


def _attribute_name_problem(node: ast.AST, name: str) -> Refusal | None:
    """The rules on an attribute's name wherever it appears: `x.name`, or a class pattern's
    keyword (`case str(format=f)` reads `format` too)."""
    if name in _FORMATTERS:
        return _refusal(
            node,
            f"`.{name}()` is not allowed (a format string can reach attributes): "
            'use an f-string, e.g. f"{total:.2f}"',
            name,
        )
    if name in _REFUSED_METHODS:
        return _refusal(
            node,
            f"`.{name}` is not allowed: it reads or writes files or evaluates text as "
            "code; compute in Python and return the values",
            name,
        )
    return None


def _shape_problem(node: ast.AST) -> Refusal | None:
    """Class patterns' keywords (attributes read by name), text that is a dunder name, and
    class keywords (a metaclass)."""
    if isinstance(node, ast.MatchClass):
        for name in node.kwd_attrs:
            problem = _attribute_name_problem(node, name)
            if problem is not None:
                return problem
    text = node.value if isinstance(node, ast.Constant) else None
    if isinstance(text, str) and _DUNDER_TEXT.match(text):
        return _refusal(
            node, f"the text {text!r} is not allowed: it names an interpreter internal", text
        )
    if isinstance(node, ast.ClassDef) and node.keywords:
        return _refusal(node, "class keywords (a metaclass) are not allowed", node.name)
    return None


def _call_problem(node: ast.Call) -> Refusal | None:
    func = node.func
    if not isinstance(func, ast.Attribute) or func.attr not in _PATH_WRITERS:
        return None
    if node.args or any(k.arg in _PATH_KEYWORDS for k in node.keywords):
        return _refusal(
            node,
            f"`.{func.attr}(path)` is not allowed: there are no files; call it without a path "
            "to get the text, or return the values",
            func.attr,
        )
    return None


def _refusal(node: ast.AST, message: str, name: str, allowed: tuple[str, ...] = ()) -> Refusal:
    line = getattr(node, "lineno", 0)
    column = getattr(node, "col_offset", 0)
    return Refusal(
        message=f"line {line}: {message}" if line else message,
        node=type(node).__name__,
        line=line,
        column=column,
        name=name,
        allowed=allowed,
    )


def builtin_names() -> tuple[str, ...]:
    """The builtins a program may use (for the tool's description)."""
    return ("print", *SAFE_BUILTINS)
