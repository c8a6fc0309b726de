"""One configuration schema for the Python API, the CLI and YAML files.

Every config is a pydantic model that forbids unknown keys; :func:`parse_config` turns a mapping (from YAML or
from CLI flags) into a validated config and pydantic's errors into one :class:`~aelab.errors.ConfigError` line
that names the key and what is allowed. Every field has a docstring: it is the field's ``--help`` text in the
CLI. The modules, by topic:

* :mod:`.data`: :class:`DataConfig`, which images and how they are split;
* :mod:`.specs`: the architectures (:class:`MLPSpec`, :class:`ConvSpec`, :class:`ResSpec`);
* :mod:`.variants`: sparsity, the VAE and the VQ-VAE settings;
* :mod:`.model_config`: :class:`ModelConfig`, a preset or a spec and what is added to it;
* :mod:`.presets`: the one preset table (torch-free);
* :mod:`.training`: :class:`TrainingConfig`, corruption and the recipes;
* :mod:`.run_config`: :class:`RunConfig`, :class:`ExperimentConfig`, :class:`RunOptions`;
* :mod:`.parsing`: mappings and YAML to configs and back.

One YAML dialect, the experiment (:class:`ExperimentConfig`); ``aelab compare``, ``aelab train`` and
``aelab run`` all read it::

    name: my-experiment                  # folder under the runs folder (optional)
    seed: 0
    data: {name: fashion-mnist, val_fraction: 0.05}
    training: {epochs: 50, batch_size: 64, lr: 1.0e-3}
    model: linear-3                      # the default model: a preset name or {preset|spec, sparsity, ...}
    models: [linear-3, conv-64]          # one run per model (the compare form)
    runs: [{seed: 1}, {training: {lr: 3.0e-4}}]     # overrides per run
    grid: {training.lr: [1.0e-3, 3.0e-4]}            # every combination, crossed with models and runs
"""

from aelab.config.base import Activation, Strict, flag
from aelab.config.data import DATASET_NAMES, DataConfig, class_list
from aelab.config.model_config import ModelConfig
from aelab.config.parsing import (
    check_key,
    check_value,
    dump_yaml,
    load_yaml,
    parse_assignment,
    parse_config,
    read_yaml_mapping,
    set_dotted,
)
from aelab.config.presets import (
    FRONTIER_CODE_SIZES,
    FRONTIER_GENERATIONS,
    FRONTIER_PRESETS,
    PRESET_NAMES,
    PRESETS,
    Preset,
)
from aelab.config.run_config import (
    ANOMALY_CORRUPTION,
    ANOMALY_PRESET,
    COMPARE_PRESETS,
    ExperimentConfig,
    RunConfig,
    RunOptions,
)
from aelab.config.specs import SPEC_CLASSES, ConvLayerSpec, ConvSpec, DeconvLayerSpec, MLPSpec, ModelSpec, ResSpec
from aelab.config.training import RECIPES, CorruptionConfig, TrainingConfig, recipe_of
from aelab.config.variants import PixelCNNPriorConfig, QuantizerConfig, SparsityConfig, VariationalConfig

__all__ = [
    "ANOMALY_CORRUPTION",
    "ANOMALY_PRESET",
    "COMPARE_PRESETS",
    "DATASET_NAMES",
    "FRONTIER_CODE_SIZES",
    "FRONTIER_GENERATIONS",
    "FRONTIER_PRESETS",
    "PRESETS",
    "PRESET_NAMES",
    "RECIPES",
    "SPEC_CLASSES",
    "Activation",
    "ConvLayerSpec",
    "ConvSpec",
    "CorruptionConfig",
    "DataConfig",
    "DeconvLayerSpec",
    "ExperimentConfig",
    "MLPSpec",
    "ModelConfig",
    "ModelSpec",
    "Preset",
    "PixelCNNPriorConfig",
    "QuantizerConfig",
    "ResSpec",
    "RunConfig",
    "RunOptions",
    "SparsityConfig",
    "Strict",
    "TrainingConfig",
    "VariationalConfig",
    "check_key",
    "check_value",
    "class_list",
    "dump_yaml",
    "flag",
    "load_yaml",
    "parse_assignment",
    "parse_config",
    "read_yaml_mapping",
    "recipe_of",
    "set_dotted",
]
