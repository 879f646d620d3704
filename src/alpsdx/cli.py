"""The ``alpsdx`` command line (Typer).

Each capability registers its verbs from a module under ``alpsdx/commands/``; this module
only assembles them and maps every ``AlpsdxError`` to a one-line message and exit code 2,
so a user never sees a traceback for bad input.
"""

from __future__ import annotations

import contextlib
import importlib
import sys

import typer

from alpsdx import __version__
from alpsdx.errors import AlpsdxError

app = typer.Typer(
    name="alpsdx",
    help="Decision support for autoimmune lymphoproliferative syndrome (ALPS).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Modules under alpsdx.commands that define ``register(app)``; one line per capability.
# A module listed here that is not present in this build is skipped (capabilities land
# independently); an import error *inside* a present module still fails loudly.
COMMAND_MODULES = [
    "alpsdx.commands.core",
    "alpsdx.commands.variants",
    "alpsdx.commands.flow",
    "alpsdx.commands.care",
    "alpsdx.commands.db",
    "alpsdx.commands.web",
    "alpsdx.commands.interop",
    "alpsdx.commands.screening",
    "alpsdx.commands.reliability",
]

_registered = False


def _register_all() -> None:
    global _registered
    if _registered:
        return
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(app)
    _registered = True


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit(0)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, turning alpsdx errors into exit code 2."""
    _register_all()
    try:
        # With standalone_mode off, click returns the code of a typer.Exit instead of raising.
        code = app(args=argv, standalone_mode=False)
    except AlpsdxError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except Exception as exc:  # click usage errors and the like
        # typer >= 0.20 raises its vendored click's exceptions (typer._click), not click's
        usage: tuple[type, ...] = ()
        for mod in ("click", "typer._click.exceptions"):
            with contextlib.suppress(ImportError, AttributeError):
                usage += (importlib.import_module(mod).ClickException,)
        if usage and isinstance(exc, usage):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(2)
        raise
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
