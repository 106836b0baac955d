"""The one list of tools. Adding a tool = a new folder + one line here.

Only contracts are imported, so the orchestrator, migrations and CDK can read this
without loading any handler or database driver.
"""

from __future__ import annotations

from tools.customer_lookup.contract import SPEC as CUSTOMER_LOOKUP
from tools.customer_update.contract import SPEC as CUSTOMER_UPDATE
from tools.flight_book.contract import SPEC as FLIGHT_BOOK
from tools.flight_search.contract import SPEC as FLIGHT_SEARCH
from tools.kit.contract import ToolSpec
from tools.python_exec.contract import SPEC as PYTHON_EXEC
from tools.weather_lookup.contract import SPEC as WEATHER_LOOKUP

CONTRACTS: tuple[ToolSpec, ...] = (
    CUSTOMER_LOOKUP,
    CUSTOMER_UPDATE,
    FLIGHT_SEARCH,
    FLIGHT_BOOK,
    WEATHER_LOOKUP,
    PYTHON_EXEC,
)


def handler_module(name: str) -> str:
    """The import path of a tool's Lambda handler module (entry point `handler`)."""
    return f"tools.{name}.handler"
