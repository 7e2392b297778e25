"""The `creditcert` command: every group registers itself on the one typer app."""

from __future__ import annotations

from creditcert.cli import (  # noqa: F401 - registers the commands
    batch,
    data,
    registry,
    reports,
    serve,
    tokens,
    trust,
)
from creditcert.cli.base import app


def main(argv: list[str] | None = None) -> None:
    app(args=argv)


if __name__ == "__main__":
    main()
