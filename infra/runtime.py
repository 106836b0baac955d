"""What every Lockgate function's environment holds, whatever its role.

Kept free of CDK imports so that benchmarks can start processes the way Lambda does.
"""

from __future__ import annotations

# No function uses a pydantic plugin: skipping the search for them saves reading every
# installed package's metadata on the first model build.
FUNCTION_ENVIRONMENT: dict[str, str] = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}
