"""Analyses of finished runs: open a run (or an experiment's runs) from its folder, and run entries of the
registry (:data:`aelab.figures.analyses.ANALYSES`) on it. Each writes ``<run>/analysis/<name>.png`` and
``.json`` and returns its :class:`~aelab.figures.analyses.Outcome`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from aelab.config import RunConfig, load_yaml
from aelab.errors import AelabError, ConfigError
from aelab.experiments.folders import ExperimentFolder, RunFolder
from aelab.io import atomic_write_text


@dataclass
class LoadedRun:
    """A finished run: its folder, config, dataset (re-loaded with the run's seed) and trained model."""

    folder: RunFolder
    config: RunConfig
    dataset: object
    model: object

    @property
    def label(self) -> str:
        return self.config.label

    def data(self):
        """The run's dataset (loaded on first use, with the run's seed, so its splits are the run's)."""
        if self.dataset is None:
            from aelab.data import cached_dataset

            self.dataset = cached_dataset(self.config.data, self.config.seed)
        return self.dataset


def _run_folders(path: Path) -> list[RunFolder]:
    if RunFolder(path).config.is_file():
        return [RunFolder(path)]
    members = ExperimentFolder(path).members
    if members.is_file():  # an experiment folder: its runs, wherever they live
        return [RunFolder(path.parent / rel) for rel in json.loads(members.read_text())]
    return []


def open_runs(path: Path | str, model: str | None = None, device: str = "cpu", with_data: bool = True) -> list[LoadedRun]:
    """The finished runs of a run folder or an experiment folder (only the one labelled ``model`` if given), with
    their datasets (``with_data``; else ``dataset`` is None: :meth:`LoadedRun.data` loads it when needed).

    Raises:
        AelabError: not a run or experiment folder, no such model, or no trained model in it.
    """
    from aelab.data import cached_dataset
    from aelab.models import load

    path = Path(path)
    folders = _run_folders(path)
    if not folders:
        raise AelabError(f"{str(path)!r} is not an aelab run or experiment folder (no run.yaml or runs.json); give "
                         "a folder written by 'aelab compare', 'train' or 'run'")
    configs = [(f, load_yaml(f.config, RunConfig)) for f in folders if f.config.is_file()]
    if model is not None:
        labels = [c.label for _, c in configs]
        configs = [(f, c) for f, c in configs if c.label == model]
        if not configs:
            raise AelabError(f"{str(path)!r} has no model {model!r}; allowed: {', '.join(labels)}")
    loaded = [LoadedRun(f, c, None, load(f.model_dir, device)) for f, c in configs if f.model_dir.is_dir()]
    if not loaded:
        raise AelabError(f"{str(path)!r} has no trained model (model/ folder) yet; finish the run by running the "
                         "same command again")
    for run in loaded if with_data else []:
        run.dataset = cached_dataset(run.config.data, run.config.seed)
    return loaded


def analyse_run(run: LoadedRun, name: str, params: dict | None = None):
    """Run analysis ``name`` of the registry on ``run``; save its figure and data in the run's folder.

    Raises:
        ConfigError: unknown analysis, or a bad parameter (named, with what is allowed).
    """
    from aelab.config import parse_config
    from aelab.figures import save_figure
    from aelab.figures.analyses import BY_NAME

    if name not in BY_NAME:
        raise ConfigError(f"analysis: got {name!r}; allowed: {', '.join(BY_NAME)}")
    entry = BY_NAME[name]
    p = parse_config(entry.params, dict(params or {}), source=name)
    if entry.images_only and run.dataset.is_vectors:
        raise ConfigError(f"analysis {name!r} needs images, and run {run.label!r} was trained on vector data; allowed "
                          f"there: {', '.join(a.name for a in BY_NAME.values() if not a.images_only)}")
    if not entry.fits(run.model):
        raise ConfigError(f"analysis {name!r} does not apply to model {run.label!r} ({entry.why_not(run.model)}); "
                          f"allowed for it: {', '.join(a.name for a in BY_NAME.values() if a.fits(run.model))}")
    outcome = entry.compute(run.model, run.dataset, run.label, p)
    run.folder.analysis_dir.mkdir(parents=True, exist_ok=True)
    if outcome.figure is not None:
        save_figure(outcome.figure, run.folder.analysis(name))
    if outcome.data is not None:
        atomic_write_text(run.folder.analysis(name, ".json"), json.dumps(outcome.data, indent=2))
    return outcome


def run_analyses(run: LoadedRun, log: Callable[[str], None] = print, metrics: dict | None = None) -> list[str]:
    """Every analysis of the registry that belongs in the report and applies to the run's data and model. An
    analysis that raises is logged and skipped (the trained run is kept); returns the errors, one line each.
    What the analyses measure for the run's table (e.g. the Frechet distance of samples) goes into ``metrics``."""
    from aelab.figures.analyses import ANALYSES

    has_labels = len(set(run.dataset.test.labels.tolist())) > 1
    vectors = run.dataset.is_vectors
    errors: list[str] = []
    log(f"analysing {run.label}")
    for entry in ANALYSES:
        if entry.in_report and (has_labels or not entry.needs_labels) and \
                (entry.applies is None or entry.applies(run.dataset)) and not (entry.images_only and vectors) \
                and entry.fits(run.model):
            try:
                outcome = analyse_run(run, entry.name, entry.report_params)
                if metrics is not None:
                    metrics.update(outcome.metrics)
            except Exception as exc:  # one analysis must not throw away a trained run
                errors.append(f"analysis {entry.name} of {run.label} failed: {type(exc).__name__}: {exc}")
                log(errors[-1])
    return errors


def analyse(path: Path | str, name: str, model: str | None = None, **params):
    """API of ``aelab <analysis> PATH``: run analysis ``name`` on the first run of ``path`` (a run or experiment
    folder), or on the run labelled ``model``. Returns ``(outcome, run)``."""
    run = open_runs(path, model)[0]
    return analyse_run(run, name, params), run
