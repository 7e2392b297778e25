"""The `creditcert` command (typer): parse, open the city, make one call, render, exit."""

from creditcert.cli.app import main

__all__ = ["main"]
