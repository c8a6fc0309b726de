"""What every command shares: the consoles (user text is printed verbatim, never read as markup), the one way
to declare a command (:func:`add`), shared options, and the exit codes.

Exit codes: 0 all done; 1 the command finished what it could but some runs failed (each is listed); 2 bad input
(one ``error:`` line on stderr, nothing written); 130 interrupted (every finished epoch is checkpointed).
"""

from __future__ import annotations

import functools
import gc
import importlib
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from aelab.cli.schema import Flag, command
from aelab.errors import AelabError

EXIT_FAILED_RUNS, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130
EXIT_CODES = (
    "Exit codes: 0 done; 1 some runs failed (the others finished; each failure is listed); 2 bad input "
    "(one error line, nothing written); 130 interrupted (run the same command again to continue)."
)

console = Console(width=None if sys.stdout.isatty() else 160, markup=False, highlight=False)
err_console = Console(stderr=True, markup=False, highlight=False)


def user_errors(fn: Callable) -> Callable:
    """Turn AelabError into one 'error: ...' line on stderr and exit code 2; Ctrl-C into exit code 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except AelabError as exc:
            err_console.print("error:", str(exc), style="bold red" if err_console.is_terminal else None, soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except KeyboardInterrupt:
            err_console.print(
                "interrupted: every finished epoch is checkpointed; run the same command again to continue",
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper


def import_quietly(*modules: str) -> None:
    """Import ``modules`` with the garbage collector paused, then freeze every object alive (:func:`gc.freeze`).

    For the libraries a command cannot do without (torch's compiler): their imports allocate hundreds of thousands of
    objects that live as long as the process. The automatic full collections that walk them during the imports,
    and again during the command, free nothing; they took ~0.5 s of every training command (BENCHMARKS.md).
    Frozen objects are still released by reference counting; the few reference cycles the imports leave behind
    stay in memory until the process ends. Nothing is done when every module is imported already (a second call,
    or a process that imported them itself, such as a test run invoking commands)."""
    todo = [name for name in modules if name not in sys.modules]
    if not todo:
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        for name in todo:
            importlib.import_module(name)
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def log(message: str) -> None:
    """A progress line on stdout (printed as it is)."""
    console.print(message, soft_wrap=True)


P = inspect.Parameter


def option(
    name: str, default: Any, annotation: Any, help: str, *decls: str, panel: Optional[str] = None, **kwargs
) -> P:
    """A keyword parameter of a command: a typer option ``decls`` with its help and panel."""
    return P(
        name,
        P.KEYWORD_ONLY,
        annotation=annotation,
        default=typer.Option(default, *decls, help=escape(help), rich_help_panel=panel, **kwargs),
    )


def argument(name: str, annotation: Any, help: str, default: Any = ...) -> P:
    """A positional argument of a command."""
    return P(name, P.KEYWORD_ONLY, annotation=annotation, default=typer.Argument(default, help=escape(help)))


def add(
    app: typer.Typer, name: str, fn: Callable, params: list[P], flags: list[Flag] | None = None, help: str | None = None
) -> None:
    """Declare command ``name``: ``fn`` gets ``params`` by name and, when ``flags`` (schema flags) are given,
    ``given`` (dotted key -> value of every flag used). Bad input becomes one error line and exit code 2. Help
    texts are shown as written (rich markup is escaped)."""
    text = escape(inspect.cleandoc(help or fn.__doc__ or ""))
    app.command(name, help=text)(user_errors(command(fn, params, flags or [], with_given=flags is not None)))


RUN_PATH = argument("path", Path, "A run folder, or an experiment folder (then --model picks the run)")
WHICH = option(
    "model",
    None,
    Optional[str],
    "Which run of an experiment folder, by its label (default: the first).",
    "--model",
    panel="Target",
)
DATA_DIR = option(
    "data_dir",
    None,
    Optional[Path],
    "Where the run's data is now, when it moved since training (the run keeps its id and config).",
    "--data-dir",
    panel="Target",
)
RUNS_DIR = option("runs_dir", Path("runs"), Path, "Runs folder", "--runs-dir")
