"""Experiment -> runs: every run of an :class:`~aelab.config.ExperimentConfig` as a full, validated
:class:`~aelab.config.RunConfig` with a stable id.

The runs are ``models x runs x grid`` (each list counts as one item when empty), on top of the shared
defaults; then ``overrides`` (``--epochs 2``, ``--set training.lr=3e-4``) are applied to every run, so a
flag always wins over the file. A run's id is a hash of its resolved config (seed included, display name
excluded): the same run always gets the same id, so re-running an experiment finds what is already done.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aelab.config import ExperimentConfig, RunConfig, check_key, parse_config, read_yaml_mapping, recipe_of, set_dotted
from aelab.errors import ConfigError


@dataclass(frozen=True)
class ResolvedRun:
    """One run of an experiment: its id, display name and full config."""

    id: str
    name: str
    config: RunConfig


NEUTRAL = {"schedule": "constant", "warmup_epochs": 0.0}
"""Training fields added after run ids existed, with the value that trains as before they were there: left out of
the id at that value (as unset optional fields are), so the runs made before keep their ids."""


def run_id(config: RunConfig) -> str:
    """A stable 12-hex-digit id: the hash of the resolved config (seed included; display name and how the data are
    read, in memory or memory-mapped, excluded). Unset
    optional fields (None) and the :data:`NEUTRAL` values are left out, so a field added to the schema later
    does not change existing ids."""
    data = config.model_dump(
        mode="json", exclude={"name": True, "data": {"memory_map_above_gb", "unreadable"}}, exclude_none=True
    )
    data["training"] = {k: v for k, v in data["training"].items() if k not in NEUTRAL or NEUTRAL[k] != v}
    text = json.dumps(data, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key == "model":  # replaced whole: its preset/spec decide what the other keys mean (a name is a preset)
            out[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _check_keys(experiment: ExperimentConfig, overrides: dict[str, Any], source: str) -> None:
    for key in overrides:
        check_key(key)
    for key, values in experiment.grid.items():
        try:
            check_key(key)
        except ConfigError as exc:
            raise ConfigError(f"{source}: grid {exc}") from None
        if not values:
            raise ConfigError(f"{source}: grid key {key!r} has an empty list; give at least one value")


def _one(base: dict, model: dict | None, override: dict, point: dict, overrides: dict, where: str) -> ResolvedRun:
    """The run of one (model, run override, grid point): its config over the defaults, its recipe, id and name."""
    data = _merge(base, {"model": model} if model is not None else {})
    data = _merge(data, override)
    for key, value in {**point, **overrides}.items():
        set_dotted(data, key, value)
    model_only = parse_config(RunConfig, {"model": data["model"]}, source=where).model
    data["training"] = recipe_of(model_only, data.get("training") or {})
    config = parse_config(RunConfig, data, source=where)
    shown_by_label = ("model", "model.sparsity", "model.tied", "model.code_activation", "model.name")
    changed = {**_flatten({k: v for k, v in override.items() if k not in ("model", "name")}), **point}
    extras = "".join(
        f" {k.split('.')[-1]}={_short(v)}"
        for k, v in changed.items()
        if k not in shown_by_label and _short(v) is not None
    )
    return ResolvedRun(run_id(config), f"{config.label}{extras}".strip(), config)


def _which_model(m: int, model: dict) -> str:
    """``model 2 (conv-64)``: the model's place in ``models`` and its name or preset."""
    label = model.get("name") or model.get("preset")
    return f"model {m + 1} ({label})" if label else f"model {m + 1}"


def resolve(
    experiment: ExperimentConfig, overrides: dict[str, Any] | None = None, source: str = "experiment"
) -> list[ResolvedRun]:
    """Every run of ``experiment`` as a validated config with its id, in file order.

    Args:
        experiment: the experiment.
        overrides: dotted keys -> values set on every run last (``{"training.epochs": 2}``).
        source: names the experiment in error messages (its file, or 'options').

    Raises:
        ConfigError: a grid or override key that is not a config field, an empty grid list, a bad value in a
            run (the message names the run and the key), or two runs that resolve to the same config.
    """
    overrides = {**experiment.set, **(overrides or {})}
    _check_keys(experiment, overrides, source)
    base = experiment.model_dump(mode="json", include={"seed", "data", "model"})
    # only the training fields set explicitly: the run's recipe (the preset's own by default) fills in the rest
    base["training"] = experiment.training.model_dump(mode="json", exclude_unset=True)
    models: list[dict | None] = [m.model_dump(mode="json", exclude_none=True) for m in experiment.models] or [None]
    points = [dict(zip(experiment.grid, combo)) for combo in itertools.product(*experiment.grid.values())] or [{}]
    resolved: list[ResolvedRun] = []
    seen: dict[str, str] = {}
    for m, model in enumerate(models):
        for r, override in enumerate(experiment.runs or [{}]):
            for point in points:
                parts = [
                    _which_model(m, model) if model is not None and len(models) > 1 else "",
                    f"run {r + 1}" if experiment.runs else "",
                    str(point) if point else "",
                ]
                where = " ".join([f"{source}:"] + [p for p in parts if p]).rstrip(":")
                run = _one(base, model, override, point, overrides, where)
                if run.id in seen:
                    raise ConfigError(f"{where} is the same run as {seen[run.id]}; every run must differ")
                seen[run.id] = where
                resolved.append(run)
    names = [r.name for r in resolved]
    unique = [r.name if names.count(r.name) == 1 else f"{r.name} #{i + 1}" for i, r in enumerate(resolved)]
    # the display name is unique within the experiment and is the run's name (not part of its id)
    return [
        ResolvedRun(r.id, name, r.config.model_copy(update={"name": r.config.name or name}))
        for r, name in zip(resolved, unique)
    ]


def _short(value: Any) -> str | None:
    """A value as shown in a run's name (``0,3`` for a list of numbers), or None when it is too structured."""
    if isinstance(value, list):
        return ",".join(map(str, value)) if all(isinstance(v, (int, float, str)) for v in value) else None
    return None if isinstance(value, dict) else str(value)


def _flatten(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def experiment_name(experiment: ExperimentConfig, runs: list[ResolvedRun], kind: str) -> str:
    """``experiment.name``, or ``<kind>-<8 hex digits of the run ids>``: the same runs, the same folder."""
    if experiment.name:
        return experiment.name
    digest = hashlib.sha256(",".join(r.id for r in runs).encode()).hexdigest()[:8]
    return f"{kind}-{digest}"


def load_experiment_file(path: Path | str) -> ExperimentConfig:
    """Read an experiment YAML file; its name defaults to the file's stem.

    Raises:
        ConfigError: missing file, not YAML, unknown keys or bad values (one line).
    """
    data = read_yaml_mapping(path)
    data.setdefault("name", Path(path).stem)
    return parse_config(ExperimentConfig, data, source=str(path))
