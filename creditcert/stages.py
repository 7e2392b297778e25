"""Named moments inside writing commands, so the crash tests can kill the real CLI exactly there.

A writer calls `reached("report.pdf-written")` between two durable steps. When the
environment variable CREDITCERT_KILL_AT names that stage, the process sends itself SIGKILL:
no cleanup handler, no flush, the same as a power cut or `kill -9` at that instant. Every stage is
listed in docs/operations.md with what a re-run does after it.
"""

from __future__ import annotations

import os
import signal

ENV = "CREDITCERT_KILL_AT"


def reached(stage: str) -> None:
    """Die here, at once, if the crash tests asked for this stage."""
    if os.environ.get(ENV) == stage:
        os.kill(os.getpid(), signal.SIGKILL)
