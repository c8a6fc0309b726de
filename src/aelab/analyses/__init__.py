"""The analyses: the registry (:mod:`.registry`: what an analysis is, and the one rule for which fit a run), the
entries (:mod:`.entries`), their parameters (:mod:`.params`) and the runner (:mod:`.runner`). Computation is in
:mod:`aelab.evaluation`, drawing in :mod:`aelab.figures`; finished runs are opened by
:mod:`aelab.experiments.finished`."""

from aelab.analyses.entries import ANALYSES, BY_NAME
from aelab.analyses.registry import DATA_NEEDS, Analysis, Outcome, why_not
from aelab.analyses.runner import analyse, analyse_all, entry, report_analyses

__all__ = [
    "ANALYSES",
    "BY_NAME",
    "DATA_NEEDS",
    "Analysis",
    "Outcome",
    "analyse",
    "analyse_all",
    "entry",
    "report_analyses",
    "why_not",
]
