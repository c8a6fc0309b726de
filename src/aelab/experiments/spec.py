"""Experiment files: many runs from one YAML file.

::

    name: code-sizes
    seed: 0
    data: {name: fashion-mnist, train_limit: 10000}     # shared defaults for every run
    training: {epochs: 5}
    model: {preset: linear-3}
    runs:                                                 # a list of overrides...
      - {model: conv-64}
      - {model: {preset: fc-64, sparsity: "topk:16"}}
    grid:                                                 # ...and/or a grid (crossed with every run)
      training.lr: [1.0e-3, 3.0e-4]
      seed: [0, 1]

Every run resolves to a full, validated :class:`~aelab.config.RunConfig` whose id is a hash of that config
(seed included): the same run always gets the same id, so a re-run finds what is already done.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from aelab.config import RunConfig, _Strict, parse_config, read_yaml_mapping
from aelab.errors import ConfigError


class ExperimentConfig(_Strict):
    """An experiment file: a name, shared defaults, and runs (a list, a grid, or both)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Folder name of the experiment under the runs folder."""
    seed: int = 0
    data: dict[str, Any] = {}
    training: dict[str, Any] = {}
    model: Any = "linear-3"
    """Default model: a preset name or a model mapping (preset/spec, sparsity, tied...)."""
    runs: list[dict[str, Any]] = []
    """Overrides per run, each a mapping like the defaults (model, data, training, seed, name)."""
    grid: dict[str, list[Any]] = {}
    """Dotted config keys -> lists of values; every combination is a run (crossed with ``runs``)."""


@dataclass(frozen=True)
class ResolvedRun:
    """One run of an experiment: its id, display name and full config."""

    id: str
    name: str
    config: RunConfig


def _model_value(value: Any) -> Any:
    return {"preset": value} if isinstance(value, str) else value


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key == "model":
            value = _model_value(value)
            out[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    *parents, key = dotted.split(".")
    for p in parents:
        data = data.setdefault(p, {})
    data[key] = _model_value(value) if dotted == "model" else value


def _models_in(annotation: Any) -> list[type]:
    """The pydantic model classes inside a (possibly Optional / Union / Annotated) annotation."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        found += _models_in(arg)
    origin = getattr(annotation, "__origin__", None)
    if origin is not None and not found:
        found += _models_in(origin)
    return found


def _check_grid_key(key: str) -> None:
    classes: list[type] = [RunConfig]
    parts = key.split(".")
    for i, part in enumerate(parts):
        fields = {name: f for cls in classes for name, f in cls.model_fields.items()}
        if part not in fields:
            where = ".".join(parts[:i]) or "the top level"
            allowed = ", ".join(fields) if fields else "nothing below it"
            raise ConfigError(f"grid key {key!r} is not a config field; allowed at {where}: {allowed}")
        classes = _models_in(fields[part].annotation)


def run_id(config: RunConfig) -> str:
    """A stable 12-hex-digit id: the hash of the resolved config (seed included, display name excluded)."""
    text = json.dumps(config.model_dump(mode="json", exclude={"name"}), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def resolve(experiment: ExperimentConfig, source: str = "experiment") -> list[ResolvedRun]:
    """Every run of ``experiment`` as a validated config with its id, in file order.

    Raises:
        ConfigError: an empty grid, a grid key that is not a config field, a bad value in a run (the message
            names the run and the key), or two runs that resolve to the same config.
    """
    for key, values in experiment.grid.items():
        _check_grid_key(key)
        if not values:
            raise ConfigError(f"{source}: grid key {key!r} has an empty list; give at least one value")
    base = {"seed": experiment.seed, "data": experiment.data, "training": experiment.training,
            "model": _model_value(experiment.model)}
    points = [dict(zip(experiment.grid, combo)) for combo in itertools.product(*experiment.grid.values())] or [{}]
    resolved, seen = [], {}
    for r, override in enumerate(experiment.runs or [{}]):
        for point in points:
            data = _merge(base, override)
            for key, value in point.items():
                _set_dotted(data, key, value)
            where = f"{source}: run {r + 1}" + (f" {point}" if point else "")
            config = parse_config(RunConfig, data, source=where)
            rid = run_id(config)
            if rid in seen:
                raise ConfigError(f"{where} is the same run as {seen[rid]}; every run must differ")
            seen[rid] = where
            label = config.name or config.model.label
            shown_by_label = ("model", "model.sparsity", "model.tied", "model.code_activation", "model.name")
            extras = "".join(f" {k.split('.')[-1]}={v}" for k, v in point.items()
                             if k not in shown_by_label and not isinstance(v, (dict, list)))
            resolved.append(ResolvedRun(rid, f"{label}{extras}".strip(), config))
    return resolved


def load_experiment_file(path: Path | str) -> ExperimentConfig:
    """Read an experiment YAML file (unknown keys and bad values are one-line errors)."""
    return parse_config(ExperimentConfig, read_yaml_mapping(path), source=str(path))
