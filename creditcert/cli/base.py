"""What every command group shares: the typer apps, the consoles, common options and the edge
helpers (the clock, dates, JSON output). Library errors become one line and exit 2 here.

Exit codes: 0 success, 1 a negative answer (an invalid code, rows quarantined, a rejected
report), 2 usage or input error, 3 verification could not decide.
"""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import duckdb
import typer
import typer.core
from rich.console import Console
from rich.markup import escape

from creditcert.city import City
from creditcert.data.text import visible
from creditcert.errors import CreditcertError
from creditcert.model.clock import SHANGHAI


class _CleanErrors(typer.core.TyperGroup):
    """Library errors, the OS errors of a full disk or a read-only home, and running out of
    memory (DuckDB's writers are capped: creditcert/data/staging.py) become one clean line on
    stderr and exit code 2, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CreditcertError as exc:
            fail(str(exc))
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            fail(f"{where}{exc.strerror or exc}")
        except (MemoryError, duckdb.OutOfMemoryException) as exc:
            said = str(exc).strip().splitlines()[0] if str(exc).strip() else "no detail"
            fail(
                f"out of memory ({said}); nothing was published: free memory on this machine, or "
                "split the input and run again"
            )


app = typer.Typer(
    cls=_CleanErrors,
    help="creditcert: special credit reports (信用代证) for a city's credit centre.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def group(name: str, help: str) -> typer.Typer:
    sub = typer.Typer(help=help, no_args_is_help=True)
    app.add_typer(sub, name=name)
    return sub


# Piped output is read by scripts and people alike: keep it wide rather than wrapped at 80.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # an error stays one line

HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="The city's home directory (holds creditcert.toml; default $CREDITCERT_HOME or .).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print stable JSON instead of a table.")]
_global_home: list[Path | None] = [None]


@app.callback()
def _global(
    home: Annotated[
        Path | None,
        typer.Option("--home", help="The city's home directory, for every command that follows."),
    ] = None,
) -> None:
    """creditcert: special credit reports (信用代证) for a city's credit centre."""
    _global_home[0] = home  # `creditcert --home DIR lookup …` works like `lookup … --home DIR`


def home_of(home: Path | None) -> Path | None:
    return home or _global_home[0]


def open_city(home: Path | None) -> City:
    return City.open(home_of(home))


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr: the message's text (file names, department data) is never read as
    markup or control codes; a newline in it is shown as \\x0a."""
    err.print(f"[bold red]error:[/] {escape(visible(message))}", markup=True, highlight=False)
    raise typer.Exit(code)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def now() -> datetime:
    """The clock, read at the edge only."""
    return datetime.now(SHANGHAI)


def today() -> date:
    return now().date()


def parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option}: {text!r} is not a date like 2025-06-30")


def parse_time(text: str, option: str) -> datetime:
    """An ISO 8601 time; without an offset it is Beijing time."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option}: {text!r} is not an ISO 8601 time like 2026-07-01T12:00+08:00")
    return when if when.tzinfo else when.replace(tzinfo=SHANGHAI)


def read_input(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except IsADirectoryError:
        fail(f"{path}: is a directory, expected a file")
    except OSError as exc:
        fail(f"{path}: cannot read ({exc.strerror})")
