"""The owners of every path: :class:`RunFolder` (one run) and :class:`ExperimentFolder` (one experiment).

Nothing else in aelab builds a path inside a runs folder::

    runs/                                   the runs root (--runs-dir)
      aelab.sqlite                          the one run store: every run of every experiment
      compare-1a2b3c4d/                     an experiment folder
        experiment.yaml                     the experiment as run (re-run it with 'aelab run')
        runs.json                           its run folders (relative to the runs root)
        metrics.json                        the comparison table: one row per run + PCA + mean image
        loss_curves.png                     train (solid) / validation (dashed) loss of every run
        rate_distortion.png                 test MSE / PSNR vs code size per family (runs of several sizes)
        reconstructions_epoch_010.png ...   originals / one row per run, at each logged epoch
        report.html                         all of it, and each run's analyses, in one page
        linear-3-5d41402abc4b/              a run folder: <label>-<run id>
          run.yaml                          the run's full config (with its id)
          checkpoint.pt                     last finished epoch: weights, optimizer, RNG (resume)
          model/config.json                 the trained model (aelab.load): config + input shape
          model/model.safetensors           ... and weights
          metrics.json  history.pt          test metrics; losses and snapshot reconstructions per epoch
          analysis/<name>.png|json          the analyses (interpolation, latent map, ...)
          layerwise.png  denoising.png      figures of layer-wise pretraining / denoising, when used
          stage_1/ ...  tensorboard/        layer-wise stage checkpoints; TensorBoard event files
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

STORE_NAME = "aelab.sqlite"


def safe_name(label: str) -> str:
    """A label as a file-name part: letters, digits, ``-_.`` kept, anything else ``_``."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label)


@dataclass(frozen=True)
class RunFolder:
    """The folder of one run and every path in it."""

    path: Path

    @classmethod
    def for_run(cls, root: Path | str, experiment: str, label: str, run_id: str) -> RunFolder:
        """The naming rule: ``<root>/<experiment>/<label>-<run id>``."""
        return cls(Path(root) / experiment / f"{safe_name(label)}-{run_id}")

    @property
    def config(self) -> Path:
        return self.path / "run.yaml"

    @property
    def checkpoint(self) -> Path:
        """The last finished epoch's checkpoint (what a cut run resumes from)."""
        return self.path / "checkpoint.pt"

    @property
    def checkpoint_dir(self) -> Path:
        """Where the trainer writes ``checkpoint.pt`` (and layer-wise ``stage_k/``)."""
        return self.path

    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def history(self) -> Path:
        return self.path / "history.pt"

    @property
    def analysis_dir(self) -> Path:
        return self.path / "analysis"

    def analysis(self, name: str, suffix: str = ".png") -> Path:
        return self.analysis_dir / f"{name}{suffix}"

    def figure(self, name: str) -> Path:
        """A figure of the run itself (``layerwise``, ``denoising``)."""
        return self.path / f"{name}.png"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    def read_metrics(self) -> dict | None:
        return json.loads(self.metrics.read_text()) if self.metrics.is_file() else None


@dataclass(frozen=True)
class ExperimentFolder:
    """The folder of one experiment: its definition, its comparison table, figures and report."""

    path: Path

    @classmethod
    def for_experiment(cls, root: Path | str, name: str) -> ExperimentFolder:
        return cls(Path(root) / name)

    @property
    def config(self) -> Path:
        return self.path / "experiment.yaml"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def members(self) -> Path:
        """``runs.json``: the experiment's run folders, relative to the runs root, in order."""
        return self.path / "runs.json"

    @property
    def loss_curves(self) -> Path:
        return self.path / "loss_curves.png"

    def reconstructions(self, epoch: int, group: str = "") -> Path:
        return self.path / f"reconstructions{'_' + safe_name(group) if group else ''}_epoch_{epoch:03d}.png"

    @property
    def rate_distortion(self) -> Path:
        """Test MSE and PSNR against code size, one line per model family (when the runs have several sizes)."""
        return self.path / "rate_distortion.png"

    @property
    def report(self) -> Path:
        return self.path / "report.html"


def store_path(root: Path | str) -> Path:
    """The one run store of a runs root."""
    return Path(root) / STORE_NAME
