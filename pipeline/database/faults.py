"""The ways a database can fail an import that a user can act on, and what each says.

Each dialect recognises its own driver's errors (``Dialect.fault``); the message and the
exit status (4, or 5 for a lock held past the wait) are the same whichever database it was.
"""

from __future__ import annotations

from enum import Enum


class Fault(Enum):
    LOCK_TIMEOUT = "gave up waiting for a lock another session holds (see --lock-timeout)"
    STATEMENT_TIMEOUT = "the server cancelled a statement that ran past its statement time limit"
    READ_ONLY = "the database is read-only for this connection"
    CONFLICT = "a deadlock or serialisation failure with another session"
    DISCONNECTED = "the connection to the server was lost"

    @property
    def exit_code(self) -> int:
        """5 when another session held a lock past the wait; 4 for any other fault."""
        return 5 if self is Fault.LOCK_TIMEOUT else 4

    @property
    def retried(self) -> bool:
        """Whether running the whole import again may succeed without anyone doing anything."""
        return self is Fault.CONFLICT


CONFLICT_ATTEMPTS = 3  # a file is tried this many times when another session's work conflicts
CONFLICT_PAUSE = 0.5  # seconds before the second attempt, doubled before each one after


def outcome_unknown(run_id: str) -> str:
    """What to say when the connection went while the commit was on its way."""
    return (
        f"the connection was lost during the commit; outcome unknown: "
        f"`dependents runs show {run_id}` tells whether it committed"
    )
