"""Command line: a thin typer layer over the Python API, one module per command group.

* :mod:`.experiments`: ``compare``, ``train``, ``run``, ``anomaly``, ``frontier`` (experiments of runs; their
  flags are generated from the pydantic schema, :mod:`.schema`);
* :mod:`.inspect`: ``models``, one command per analysis, ``report``;
* :mod:`.apply`: ``export``, ``encode``, ``decode``, ``score``;
* :mod:`.runs`: ``runs``.

Every command is declared the same way (:func:`aelab.cli.common.add`). Bad input is one ``error:`` line on
stderr and exit code 2; see :data:`aelab.cli.common.EXIT_CODES`. Heavy libraries (torch, matplotlib,
scikit-learn) are imported only by the command that needs them, so ``aelab --help`` is fast.
"""

from __future__ import annotations

import gc

import typer
from rich.markup import escape

from aelab.cli import apply, experiments, inspect, runs
from aelab.cli.common import EXIT_BAD_INPUT, EXIT_CODES, err_console

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help=escape(f"aelab: autoencoders on images. Train, compare and look inside them. {EXIT_CODES}"),
)
for group in (experiments, inspect, apply, runs):
    group.register(app)


def main() -> None:
    """Console-script entry point.

    A command line typer cannot parse (an unknown option or command, a value of the wrong type, a missing
    argument) is one ``error:`` line on stderr and exit code 2, like every other bad input, instead of typer's
    boxed usage message; ``aelab`` alone prints the help.

    When the command is over (its results written), every object still alive is frozen (:func:`gc.freeze`):
    the interpreter's shutdown then skips the garbage collections that walk the objects of torch and its
    compiler, which took 0.5-1 s of every ``aelab`` process that trained a model (BENCHMARKS.md). Objects are
    still released and their files closed as before."""
    try:
        code = app(prog_name="aelab", standalone_mode=False)
    except Exception as exc:
        if not _is_usage_error(exc):
            raise
        code = _usage_error(exc)
    finally:
        gc.freeze()
    raise SystemExit(code if type(code) is int else 0)


def _is_usage_error(exc: Exception) -> bool:
    """A click usage error, whichever click typer uses (its own copy or the package)."""
    return any(cls.__name__ == "UsageError" for cls in type(exc).__mro__)


def _usage_error(exc) -> int:
    """Print ``exc`` as one ``error:`` line (nothing when it is the help that ``aelab`` alone already printed)."""
    if type(exc).__name__ != "NoArgsIsHelpError":
        command = exc.ctx.command_path if getattr(exc, "ctx", None) is not None else "aelab"
        message = " ".join(exc.format_message().split()).rstrip(".")
        style = "bold red" if err_console.is_terminal else None
        err_console.print("error:", f"{message} (see '{command} --help')", style=style, soft_wrap=True)
    return EXIT_BAD_INPUT
