"""The analysis registry's types and its one rule for which analyses fit a run.

An :class:`Analysis` is a command (``aelab <name>``), a report section, and a function of the Python API
(:func:`aelab.analyse`): its parameters, what it computes and draws (an :class:`Outcome`), its table columns,
and what it needs. A need is either the model's (:data:`aelab.models.NEEDS`: asked with ``model.lacks``) or the
data's (:data:`DATA_NEEDS`); :func:`why_not` checks them in order and names the first one missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

from pydantic import BaseModel

from aelab.models.measures import Measure
from aelab.models.needs import NEEDS

DATA_NEEDS = {
    "images": "images (not vector rows)",
    "labels": "a test split with two or more classes",
    "train_classes": "training on two or more classes",
    "one_class": "one-class training (data.normal_classes)",
}
"""What an analysis can need from the run's data."""


@dataclass
class Outcome:
    """What one analysis of one model gives."""

    figure: Any = None
    """A matplotlib Figure, saved as ``analysis/<name>.png`` (None: no figure)."""
    data: Any = None
    """JSON-able data, saved as ``analysis/<name>.json``."""
    rows: list[dict] = field(default_factory=list)
    """Table rows, formatted with the entry's ``columns``."""
    summary: str = ""
    """One line for the CLI (e.g. how many units are dead)."""
    metrics: dict = field(default_factory=dict)
    """Values for the run's row in the experiment table (e.g. the Frechet distance of its samples)."""
    columns: tuple = ()
    """The columns of ``rows`` (set by the runner from the analysis's entry)."""

    def _repr_html_(self) -> str:
        """In Jupyter: the summary, the figure and the table."""
        import html

        from aelab.figures.report import figure_html, rows_html

        parts = [f"<p>{html.escape(self.summary)}</p>"] if self.summary else []
        if self.figure is not None:
            parts.append(figure_html(self.figure))
        if self.rows and self.columns:
            parts.append(rows_html(self.rows, [c for c in self.columns if any(c.key in r for r in self.rows)]))
        return "\n".join(parts)


@dataclass(frozen=True)
class Analysis:
    """One analysis: CLI command ``aelab <name>``, file stem ``analysis/<name>``, report section ``title``."""

    name: str
    title: str
    text: str
    """What the figure shows (the report's caption and the command's help)."""
    params: type[BaseModel]
    compute: Callable[..., Outcome]
    """``compute(model, dataset, label, params) -> Outcome``."""
    columns: tuple[Measure, ...] = ()
    needs: tuple[str, ...] = ()
    """What the model (:data:`aelab.models.NEEDS`) and the data (:data:`DATA_NEEDS`) must give, always."""
    report_needs: tuple[str, ...] = ()
    """What it needs besides to run by itself for the report (a command can give it through its parameters)."""
    report_params: dict = field(default_factory=dict)
    """Parameters used when the report runs it (defaults otherwise)."""
    in_report: bool = True
    """Run for every run's report section (PCA is in the experiment's table already)."""


def data_lacks(dataset: Any, need: str) -> Optional[str]:
    """Why ``dataset`` does not give ``need`` (one of :data:`DATA_NEEDS`), or None when it does."""
    if need == "images" and dataset.is_vectors:
        return "the run was trained on vector data"
    if need == "labels" and len(set(dataset.test.labels.tolist())) < 2:
        return "the test split has a single class"
    if need == "train_classes" and len(set(dataset.train.labels.tolist())) < 2:
        return "the run was trained on a single class"
    if need == "one_class" and dataset.normal_classes is None:
        return "the run was trained on every class (not one-class)"
    return None


def why_not(entry: Analysis, model: Any, dataset: Any, report: bool = False) -> Optional[str]:
    """The one rule: why ``entry`` does not fit this model and data (the first need missing), or None when it
    fits. ``report``: also check what it needs to run by itself in the report. ``dataset`` None checks only the
    model's needs."""
    for need in entry.needs + (entry.report_needs if report else ()):
        if need in NEEDS:
            reason = model.lacks(need)
        elif dataset is not None:
            reason = data_lacks(dataset, need)
        else:
            reason = None
        if reason is not None:
            return reason
    return None
