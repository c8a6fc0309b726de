"""Runs and experiments: :class:`RunConfig` (one run), :class:`ExperimentConfig` (a set of runs, the one YAML
dialect of ``aelab compare``, ``train`` and ``run``) and :class:`RunOptions` (how they are executed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field

from aelab.config.base import Strict, flag
from aelab.config.data import DataConfig
from aelab.config.model_config import ModelConfig
from aelab.config.training import TrainingConfig

COMPARE_PRESETS = ("linear-3", "conv-64")
"""What ``aelab compare`` trains when it is not told: the Covalent tutorial's linear and conv autoencoders."""
ANOMALY_PRESET = "conv-16"
"""What ``aelab anomaly`` trains (once per normal class) when it is not told (chosen on the validation split: the
anomaly guide)."""
ANOMALY_CORRUPTION = "gaussian:0.1"
"""How ``aelab anomaly`` corrupts training images when it is not told (``training.corruption``, ``--denoise``):
denoising training, chosen on the validation split (the anomaly guide)."""


class RunConfig(Strict):
    """One run: one model trained on one dataset with one training setting and seed."""

    name: Optional[str] = None
    """Display name of the run; defaults to the model's label."""
    seed: int = 0
    """Seed for the splits, the initial weights and the batch order."""
    data: DataConfig = DataConfig()
    """Which images, and how they are split."""
    model: ModelConfig = ModelConfig(preset="linear-3")
    """The autoencoder."""
    training: TrainingConfig = TrainingConfig()
    """How it is trained."""

    @property
    def label(self) -> str:
        """The run's display name: ``name`` or the model's label."""
        return self.name or self.model.label


class ExperimentConfig(Strict):
    """A set of runs: shared defaults, and the runs as a list of models, a list of overrides, a grid, or a
    mix (crossed). ``aelab compare`` is the ``models`` form; ``aelab train`` an experiment with one run."""

    name: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Experiment folder under the runs folder; default: the file's name, or the command and a hash of its
    runs (so the same command finds its runs again)."""
    seed: int = 0
    """Seed for the splits, the initial weights and the batch order."""
    data: DataConfig = DataConfig()
    """Which images, and how they are split (shared by every run)."""
    training: TrainingConfig = TrainingConfig()
    """How the runs are trained (shared by every run)."""
    model: ModelConfig = ModelConfig(preset="linear-3")
    """The model of runs that name none: a preset name or a mapping (preset or spec, sparsity, tied...)."""
    models: list[ModelConfig] = []
    """One run per model, all on the same data and training (the compare form)."""
    runs: list[dict[str, Any]] = []
    """Overrides per run, each a mapping like the defaults (name, seed, data, model, training)."""
    grid: dict[str, list[Any]] = {}
    """Dotted config keys -> lists of values; every combination is a run (crossed with models and runs)."""
    set: dict[str, Any] = {}
    """Dotted config keys -> values set on every run after everything else (what CLI flags and --set write)."""


class RunOptions(Strict):
    """How an experiment is executed and reported (not part of any run's config or id)."""

    runs_dir: Path = Path("runs")
    """Runs folder: the run store (aelab.sqlite), experiment folders and run folders."""
    executor: Literal["inline", "local", "ray"] = "inline"
    """inline (this process, one run after another), local (one process per run, --workers at a time) or ray."""
    workers: Optional[int] = Field(None, ge=1)
    """Runs in parallel with the local or ray executor (default: one per core, at most the runs to do)."""
    address: Optional[str] = None
    """Ray cluster address (default: start a local Ray)."""
    retry_failed: bool = False
    """Run failed runs again (finished runs are never re-run)."""
    tensorboard: bool = False
    """Write TensorBoard event files into each run folder."""
    analyses: bool = Field(True, **flag("analysis"))
    """Run the analyses (interpolation, latent map, ..., probes) of every run for the report."""
    samples: bool = False
    """Measure the quality of every run's samples in the report (Frechet distance in the features of aelab's
    classifier, trained once per dataset); without it, only the models with a prior or codebook of their own."""
    progress: bool = True
    """Progress bars (inline executor)."""
    nproc_per_node: int = Field(1, ge=1)
    """Train each run on this many processes of this machine: DistributedDataParallel (gloo on CPU, NCCL with a
    GPU each) launched through torch.distributed.run, the global batch shared; what torchrun --nproc-per-node N
    -m aelab ... does, with bad input refused before any process starts."""
