"""Orchestration: runs made of data -> models -> training -> evaluation -> figures/report."""

from aelab.experiments.compare import CompareResult, ModelResult, compare, new_run_dir

__all__ = ["compare", "CompareResult", "ModelResult", "new_run_dir"]
