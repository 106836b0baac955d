"""In-memory session store: keeps the (immutable) states themselves, no serialization."""

from __future__ import annotations

from orchestrator.types import SessionState


class MemoryStore:
    """Checkpoints kept in a dict. States are frozen, so keeping the object is a snapshot."""

    def __init__(self) -> None:
        self._rows: dict[str, SessionState] = {}

    def save(self, state: SessionState) -> None:
        """Keep the latest state."""
        self._rows[state.session_id] = state

    def load(self, session_id: str) -> SessionState | None:
        """The last checkpoint."""
        return self._rows.get(session_id)
