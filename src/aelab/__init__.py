"""aelab: autoencoders on images.

The Python API mirrors the CLI::

    import aelab
    result = aelab.compare(aelab.CompareConfig(training=aelab.TrainingConfig(epochs=5)))
    print(result.rows)

Data flows one way: :mod:`aelab.data` -> :mod:`aelab.models` -> :mod:`aelab.training` ->
:mod:`aelab.evaluation` -> :mod:`aelab.figures`; :mod:`aelab.experiments` orchestrates them.
"""

from aelab.config import (CompareConfig, ConvLayerSpec, ConvSpec, DataConfig, DeconvLayerSpec, MLPSpec, ModelConfig,
                          RunConfig, TrainingConfig, load_yaml)
from aelab.data import ImageDataset, load_dataset
from aelab.errors import AelabError
from aelab.evaluation import evaluate
from aelab.experiments import compare
from aelab.experiments.runner import load_experiment, run_experiment
from aelab.models import PRESETS, AutoEncoder, build_model
from aelab.training import train

__version__ = "0.1.0"
__all__ = ["CompareConfig", "ConvLayerSpec", "ConvSpec", "DataConfig", "DeconvLayerSpec", "MLPSpec", "ModelConfig",
           "RunConfig", "TrainingConfig", "load_yaml", "ImageDataset", "load_dataset", "AelabError", "evaluate",
           "compare", "run_experiment", "load_experiment", "PRESETS", "AutoEncoder", "build_model", "train"]
