"""The ``clearsight`` command line."""

from __future__ import annotations

import typer

from clearsight import __version__

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Clearsight observability platform.")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(f"clearsight {__version__}")


def main() -> None:
    app()
