"""In-memory session store. Stores JSON, so every checkpoint proves it round-trips."""

from __future__ import annotations

from orchestrator.types import SessionState


class MemoryStore:
    """Checkpoints kept in a dict, as serialized JSON."""

    def __init__(self) -> None:
        self._rows: dict[str, str] = {}

    def save(self, state: SessionState) -> None:
        """Serialize and keep the latest state."""
        self._rows[state.session_id] = state.model_dump_json()

    def load(self, session_id: str) -> SessionState | None:
        """The last checkpoint, parsed back."""
        row = self._rows.get(session_id)
        return None if row is None else SessionState.model_validate_json(row)
