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
from aelab.cli.common import EXIT_CODES

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

    When the command is over (its results written), every object still alive is frozen (:func:`gc.freeze`):
    the interpreter's shutdown then skips the garbage collections that walk the objects of torch and its
    compiler, which took 0.5-1 s of every ``aelab`` process that trained a model (BENCHMARKS.md). Objects are
    still released and their files closed as before."""
    try:
        app(prog_name="aelab")
    finally:
        gc.freeze()
