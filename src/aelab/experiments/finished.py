"""Finished runs, opened from their folders: a run's config, its trained model and (on first use) its dataset,
for the analyses, the report and the apply commands. A run folder can be opened from any directory: its data
path is stored absolute; when the data moved, ``data_dir`` says where it is now (the run's id and config stay)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from aelab.config import RunConfig, load_yaml
from aelab.errors import AelabError
from aelab.experiments.folders import ExperimentFolder, RunFolder, safe_name


@dataclass
class LoadedRun:
    """A finished run: its folder, config, trained model and dataset (loaded with the run's seed on first use)."""

    folder: RunFolder
    config: RunConfig
    dataset: Any
    model: Any
    data_dir: Optional[Path] = None
    """Where the run's data is now, when it moved (None: where the run's config says)."""

    @property
    def label(self) -> str:
        return self.config.label

    def data(self):
        """The run's dataset (loaded on first use, with the run's seed, so its splits are the run's)."""
        if self.dataset is None:
            from aelab.data import cached_dataset

            data = self.config.data
            if self.data_dir is not None:
                data = data.model_copy(update={"data_dir": Path(self.data_dir).expanduser().absolute()})
            self.dataset = cached_dataset(data, self.config.seed)
        return self.dataset

    def _repr_html_(self) -> str:
        """In Jupyter: the run's test metrics and the figures of its analyses."""
        import html

        from aelab.figures.report import image_html, rows_html
        from aelab.models.table import columns

        parts = [f"<h3>{html.escape(self.label)}</h3><p>{html.escape(str(self.folder.path))}</p>"]
        row = self.folder.read_metrics()
        if row:
            parts.append(rows_html([row], columns([row])))
        parts += [image_html(p) for p in sorted(self.folder.analysis_dir.glob("*.png"))]
        return "\n".join(parts)

    def analyse(self, name: str, params: dict | None = None):
        """Run analysis ``name`` on this run; its figure and data go to the run's ``analysis/`` folder."""
        from aelab.analyses import analyse

        return analyse(self.model, self.data(), self.label, self.folder.analysis_dir, name, params)


def run_folders(path: Path) -> list[RunFolder]:
    """The run folders of a run folder (itself) or an experiment folder (its runs, wherever they live)."""
    if RunFolder(path).config.is_file():
        return [RunFolder(path)]
    members = ExperimentFolder(path).members
    if members.is_file():
        return [RunFolder(path.parent / rel) for rel in json.loads(members.read_text())]
    return []


def open_runs(
    path: Path | str,
    model: str | None = None,
    device: str = "cpu",
    with_data: bool = True,
    data_dir: Path | str | None = None,
) -> list[LoadedRun]:
    """The finished runs of a run folder or an experiment folder (only the one labelled ``model`` if given: its
    label, e.g. ``conv-16 normal_classes=6``, that label as its folder writes it, ``conv-16_normal_classes_6``, or
    the run folder's name), with their datasets (``with_data``; else :meth:`LoadedRun.data` loads one when needed).

    Raises:
        AelabError: not a run or experiment folder, no such model, or no trained model in it.
    """
    from aelab.models import load

    path = Path(path)
    folders = run_folders(path)
    if not folders:
        raise AelabError(
            f"{str(path)!r} is not an aelab run or experiment folder (no run.yaml or runs.json); give "
            "a folder written by 'aelab compare', 'train' or 'run'"
        )
    configs = [(f, load_yaml(f.config, RunConfig)) for f in folders if f.config.is_file()]
    if model is not None:
        labels = [c.label for _, c in configs]
        configs = [(f, c) for f, c in configs if model in (c.label, safe_name(c.label), f.path.name)]
        if not configs:
            raise AelabError(f"{str(path)!r} has no model {model!r}; allowed: {', '.join(labels)}")
    runs = [
        LoadedRun(f, c, None, load(f.model_dir, device), Path(data_dir) if data_dir else None)
        for f, c in configs
        if f.model_dir.is_dir()
    ]
    if not runs:
        raise AelabError(
            f"{str(path)!r} has no trained model (model/ folder) yet; finish the run by running the same command again"
        )
    for run in runs if with_data else []:
        run.data()
    return runs


def analyse(path: Path | str, name: str, model: str | None = None, data_dir: Path | str | None = None, **params):
    """API of ``aelab <analysis> PATH``: run analysis ``name`` on the first run of ``path`` (a run or experiment
    folder), or on the run labelled ``model``. Returns ``(outcome, run)``.

    Raises:
        AelabError / ConfigError: see :func:`open_runs` and :func:`aelab.analyses.analyse`.
    """
    run = open_runs(path, model, data_dir=data_dir)[0]
    return run.analyse(name, params), run
