"""Records: the values the loop builds every step.

They are slotted dataclasses, not pydantic models: a pydantic model or a frozen dataclass costs
about three times as much to build, and the loop builds about a dozen values per step. `record`
makes a class immutable to the type checker (assigning a field is a mypy error) and cheap at
run time. Records are validated where they come from outside (a stored checkpoint, a file)
and written out with `codec`, a pydantic adapter built on first use.

Records compare by value but are not hashable (mypy, seeing them frozen, would allow it): never
use one as a dict key or set member.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar, dataclass_transform

from pydantic import ConfigDict, TypeAdapter

__all__ = ["as_data", "codec", "record"]

_T = TypeVar("_T")
# Read by pydantic when a record is validated: unknown fields in stored data are an error.
_STRICT = ConfigDict(extra="forbid")


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(field,))
def record(cls: type[_T]) -> type[_T]:
    """A slotted, keyword-only dataclass that mypy treats as frozen."""
    cls.__pydantic_config__ = _STRICT  # type: ignore[attr-defined]
    return dataclass(slots=True, kw_only=True)(cls)


_CODECS: dict[type[Any], TypeAdapter[Any]] = {}


def codec(cls: type[_T]) -> TypeAdapter[_T]:
    """Validation and JSON for a record type, built once, on first use."""
    adapter = _CODECS.get(cls)
    if adapter is None:
        adapter = _CODECS[cls] = TypeAdapter(cls)
    return adapter


def as_data(value: Any, *, exclude_defaults: bool = False) -> Any:
    """A record (or a dict of them) as plain JSON-ready data: dicts, lists, strings, numbers."""
    return codec(type(value)).dump_python(value, mode="json", exclude_defaults=exclude_defaults)
