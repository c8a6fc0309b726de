"""Running analyses on a trained model: one by name (a command, :func:`aelab.analyse`) or every one that fits (the
report), each writing ``<out>/<name>.png`` and ``<out>/<name>.json``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aelab.analyses.entries import ANALYSES, BY_NAME
from aelab.analyses.registry import Analysis, Outcome, why_not
from aelab.config import parse_config
from aelab.errors import ConfigError
from aelab.io import atomic_write_text


def entry(name: str) -> Analysis:
    """The analysis called ``name``.

    Raises:
        ConfigError: no such analysis (the message lists them).
    """
    if name not in BY_NAME:
        raise ConfigError(f"analysis: got {name!r}; allowed: {', '.join(BY_NAME)}")
    return BY_NAME[name]


def analyse(model: Any, dataset: Any, label: str, out: Path, name: str, params: dict | None = None) -> Outcome:
    """Run analysis ``name`` on ``model`` (trained on ``dataset``); save its figure and data under ``out``.

    Raises:
        ConfigError: unknown analysis, a bad parameter (named, with what is allowed), or a model or data the
            analysis does not fit (why, and the analyses that do).
    """
    a = entry(name)
    p = parse_config(a.params, dict(params or {}), source=name)
    reason = why_not(a, model, dataset)
    if reason is not None:
        fitting = ", ".join(b.name for b in ANALYSES if why_not(b, model, dataset) is None)
        raise ConfigError(f"analysis {name!r} does not apply to {label!r} ({reason}); allowed for it: {fitting}")
    outcome = a.compute(model, dataset, label, p)
    outcome.columns = a.columns
    out.mkdir(parents=True, exist_ok=True)
    if outcome.figure is not None:
        from aelab.figures.canvas import save_figure

        save_figure(outcome.figure, out / f"{name}.png")
    if outcome.data is not None:
        atomic_write_text(out / f"{name}.json", json.dumps(outcome.data, indent=2))
    return outcome


def report_analyses(model: Any, dataset: Any) -> list[Analysis]:
    """The analyses the report runs for this model and data: those in the report that fit, with what they need
    to run by themselves."""
    return [a for a in ANALYSES if a.in_report and why_not(a, model, dataset, report=True) is None]


def analyse_all(
    model: Any,
    dataset: Any,
    label: str,
    out: Path,
    log: Callable[[str], None] = print,
    params: dict[str, dict] | None = None,
) -> tuple[dict, list[str], list[str]]:
    """Every analysis of :func:`report_analyses` (with its report parameters, and ``params[name]`` over them). One
    that raises is logged and skipped (the trained run is kept).

    Returns:
        (what the analyses measured for the run's row, e.g. the Frechet distance of its samples; the errors, one
        line each: ``analysis NAME of LABEL failed: ...``; the analyses that do not apply, ``NAME: why``).
    """
    metrics: dict = {}
    errors: list[str] = []
    log(f"analysing {label}")
    for a in report_analyses(model, dataset):
        try:
            given = {**a.report_params, **(params or {}).get(a.name, {})}
            metrics.update(analyse(model, dataset, label, out, a.name, given).metrics)
        except Exception as exc:  # one analysis must not throw away a trained run
            errors.append(f"analysis {a.name} of {label} failed: {type(exc).__name__}: {exc}")
            log(errors[-1])
    skipped = [
        f"{a.name}: {why_not(a, model, dataset, report=True)}"
        for a in ANALYSES
        if a.in_report and why_not(a, model, dataset, report=True) is not None
    ]
    return metrics, errors, skipped
