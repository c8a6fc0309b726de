"""aelab: autoencoders on images.

The Python API mirrors the CLI::

    import aelab
    result = aelab.compare(aelab.ExperimentConfig(training=aelab.TrainingConfig(epochs=5)))   # aelab compare
    print(result.rows)
    model = aelab.load(result.run_dirs[1] / "model")                                        # a trained model

Data flows one way: :mod:`aelab.config` -> :mod:`aelab.data` -> :mod:`aelab.models` -> :mod:`aelab.training` /
:mod:`aelab.evaluation` -> :mod:`aelab.figures` -> :mod:`aelab.analyses` / :mod:`aelab.experiments` /
:mod:`aelab.apply` -> :mod:`aelab.cli`. Names are imported on first use, so ``import aelab`` (and
``aelab --help``) stays fast.
"""

__version__ = "0.1.0"

_LAZY = {
    "ExperimentConfig": "aelab.config",
    "RunConfig": "aelab.config",
    "RunOptions": "aelab.config",
    "DataConfig": "aelab.config",
    "ModelConfig": "aelab.config",
    "TrainingConfig": "aelab.config",
    "MLPSpec": "aelab.config",
    "ConvSpec": "aelab.config",
    "ResSpec": "aelab.config",
    "ConvLayerSpec": "aelab.config",
    "DeconvLayerSpec": "aelab.config",
    "load_yaml": "aelab.config",
    "AelabError": "aelab.errors",
    "ImageDataset": "aelab.data",
    "load_dataset": "aelab.data",
    "PRESETS": "aelab.models",
    "AutoEncoder": "aelab.models",
    "build_model": "aelab.models",
    "load": "aelab.models",
    "train": "aelab.training",
    "evaluate": "aelab.evaluation",
    "compare": "aelab.experiments.jobs",
    "anomaly": "aelab.experiments.jobs",
    "frontier": "aelab.experiments.jobs",
    "run_experiment": "aelab.experiments.jobs",
    "load_experiment": "aelab.experiments.jobs",
    "report": "aelab.experiments.jobs",
    "open_experiment": "aelab.experiments.jobs",
    "ExperimentResult": "aelab.experiments.outputs",
    "analyse": "aelab.experiments.finished",
    "open_runs": "aelab.experiments.finished",
    "codecs": "aelab.experiments.codecs_job",
    "RunFolder": "aelab.experiments.folders",
    "ExperimentFolder": "aelab.experiments.folders",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aelab' has no attribute {name!r}")
