"""Every command and option explains itself, and the docs name every command."""

from pathlib import Path

import typer.core
import typer.main

from creditcert.cli.app import app

ROOT = Path(__file__).resolve().parents[1]


def walk(command, path: tuple[str, ...] = ()):
    yield path, command
    if isinstance(command, typer.core.TyperGroup):
        for name, sub in command.commands.items():
            yield from walk(sub, (*path, name))


COMMANDS = list(walk(typer.main.get_command(app)))


def test_every_command_and_option_has_help():
    for path, command in COMMANDS:
        assert (command.help or "").strip(), f"`creditcert {' '.join(path)}` has no help"
        for param in command.params:
            if isinstance(param, typer.core.TyperOption) and param.name != "help":
                assert (param.help or "").strip(), f"{' '.join(path)} {param.opts} has no help"


def test_readme_tour_shows_every_leaf_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    leaves = [" ".join(p) for p, c in COMMANDS if p and not isinstance(c, typer.core.TyperGroup)]
    import re

    missing = [c for c in leaves if not re.search(rf"creditcert (--home \S+ )?{c}\b", readme)]
    assert not missing, f"README does not show: {missing}"
