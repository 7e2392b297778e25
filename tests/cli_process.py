"""The body of a forked CLI run (conftest.run_cli): small, so the fork server preloads it with
the CLI and a run imports nothing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from creditcert.cli.app import app


def run(argv: list[str], env: dict[str, str], out: Path, err: Path) -> None:
    """In the forked process: the environment, stdout and stderr a subprocess would have had,
    then the command, exiting with its status."""
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, out), (2, err)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_TRUNC), fd)
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.argv = ["creditcert", *argv]
    app(args=argv, prog_name="python -m creditcert.cli")
