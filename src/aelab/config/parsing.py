"""Reading configs: from mappings (YAML files, CLI flags) to validated configs, with pydantic's errors turned
into one :class:`ConfigError` line that names the key and what is allowed, e.g.::

    training.optimizer: got 'adamw'; allowed: 'adam', 'sgd'
    unknown key 'training.lrr'; allowed keys here: epochs, batch_size, optimizer, lr, ...

and back: :func:`dump_yaml`, dotted keys (:func:`set_dotted`, :func:`parse_assignment` for ``--set``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from aelab.config.run_config import ExperimentConfig, RunConfig
from aelab.config.specs import SPEC_CLASSES
from aelab.errors import ConfigError

C = TypeVar("C", bound=BaseModel)


def _format_error(err: Any, model_cls: type[BaseModel]) -> str:
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("function-", "tagged-union")))
    kind = err["type"]
    if kind == "extra_forbidden":
        parent_loc, key = err["loc"][:-1], err["loc"][-1]
        allowed = _fields_at(model_cls, parent_loc)
        where = f"{'.'.join(map(str, parent_loc))}." if parent_loc else ""
        return f"unknown key '{where}{key}'; allowed keys here: {', '.join(allowed)}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if kind in ("model_type", "model_attributes_type"):  # a section given as something else than a mapping
        preset = err.get("ctx", {}).get("class_name") == "ModelConfig"
        what = "a preset name or a mapping of keys to values" if preset else "a mapping of keys to values"
        return f"{loc}: expected {what} (got {err.get('input')!r})"
    if kind in ("union_tag_not_found", "union_tag_invalid"):  # a spec without its kind, or with a kind not allowed
        tag_key, kinds = err["ctx"]["discriminator"], ", ".join(map(repr, SPEC_CLASSES))
        if kind == "union_tag_not_found":
            return f"{loc}: needs the key {tag_key}; allowed: {kinds}"
        return f"{loc}.{tag_key.strip(chr(39))}: got {err['ctx']['tag']!r}; allowed: {kinds}"
    if kind in ("literal_error", "enum"):
        expected = err.get("ctx", {}).get("expected", "")
        return f"{loc}: got {err.get('input')!r}; allowed: {expected}"
    got = err.get("input")
    if kind == "value_error" or isinstance(got, (dict, list)):
        return f"{loc}: {msg}" if loc else msg
    return f"{loc}: {msg} (got {got!r})"


def _fields_at(model_cls: type[BaseModel], loc: tuple) -> list[str]:
    cls: Any = model_cls
    for part in loc:
        if isinstance(part, int) or cls is None:
            continue
        field = cls.model_fields.get(part) if hasattr(cls, "model_fields") else None
        if field is None:
            cls = SPEC_CLASSES.get(part, cls)  # a tagged-union member (spec kind)
            continue
        cls = _model_type(field.annotation)
    return list(cls.model_fields) if hasattr(cls, "model_fields") else []


def _model_type(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_type(arg)
        if found is not None:
            return found
    return None


def parse_config(model_cls: type[C], data: dict, source: str = "config") -> C:
    """Validate ``data`` against ``model_cls``.

    Raises:
        ConfigError: one line naming the first bad key (``training.lr: ...``) and what is allowed.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys to values, got {type(data).__name__}")
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_format_error(exc.errors()[0], model_cls)}") from None


def load_yaml(path: Path | str, model_cls: type[C]) -> C:
    """Read a YAML config file into ``model_cls``.

    Raises:
        ConfigError: the file is missing, is not YAML, or has a bad key or value.
    """
    return parse_config(model_cls, read_yaml_mapping(path), source=str(path))


def read_yaml_mapping(path: Path | str) -> dict:
    """The mapping in a YAML file.

    Raises:
        ConfigError: the file is missing, is not YAML, or does not hold a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys to values")
    return data


def yaml_problem(exc: Exception) -> str:
    """A YAML error in one line with its place: ``line 2, column 1: found character '\\t' that cannot start any
    token (while scanning for the next token)``."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}" + (f" ({context})" if context else "")


def check_key(key: str, root: type[BaseModel] = RunConfig) -> list[type[BaseModel]]:
    """Check that the dotted ``key`` (``training.lr``) names a field of ``root`` (or a field inside one).

    Returns:
        The config classes that have the key's last part as a field (several for a field of several spec kinds).

    Raises:
        ConfigError: the key names no field; the message lists the fields allowed where it went wrong.
    """
    classes: list[Any] = [root]
    owners: list[Any] = []
    parts = key.split(".")
    for i, part in enumerate(parts):
        fields = {name: f for cls in classes for name, f in cls.model_fields.items()}
        if part not in fields:
            where = ".".join(parts[:i]) or "the top level"
            allowed = ", ".join(fields) if fields else "nothing below it"
            raise ConfigError(f"key {key!r} is not a config field; allowed at {where}: {allowed}")
        owners = [cls for cls in classes if part in cls.model_fields]
        classes = _models_in(fields[part].annotation)
    return owners


def check_value(key: str, value: Any, shown: str, root: type[BaseModel] = RunConfig) -> None:
    """Check ``value`` against the field at dotted ``key`` on its own: its type, bounds, allowed values and the
    field's own validators. Rules that tie several fields together are checked later, with the whole config.
    Keys this cannot place on one field (a field of several spec kinds) are left to that later check.

    Raises:
        ConfigError: ``"{shown}: {key}: {what is wrong} (got {value})"``, e.g.
            ``--epochs: training.epochs: Input should be greater than or equal to 1 (got 0)`` (the key left out
            when the flag says it: ``--workers: Input should be ...``); a key that is not a config field
            (:func:`check_key`).
    """
    *parents, name = key.split(".")
    owners = check_key(key, root)
    if len(owners) != 1:
        return
    try:
        owners[0].model_validate({name: value})
    except ValidationError as exc:
        for err in exc.errors():
            if err["loc"][:1] == (name,):  # not another field's "missing", not a rule across fields
                text = _format_error({**err, "loc": (*parents, *err["loc"])}, root)
                if shown == f"--{key.replace('_', '-')}" and text.startswith(f"{key}: "):
                    text = text[len(key) + 2 :]  # --workers: workers: ... says the name twice
                raise ConfigError(f"{shown}: {text}") from None


def _models_in(annotation: Any) -> list[type]:
    """The pydantic model classes inside a (possibly Optional / Union / Annotated / list) annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        found += _models_in(arg)
    return found


def set_dotted(data: dict, key: str, value: Any) -> None:
    """``data[a][b][c] = value`` for ``key`` ``a.b.c``, creating (or replacing non-mapping) parents."""
    *parents, last = key.split(".")
    for p in parents:
        if not isinstance(data.get(p), dict):
            data[p] = {"preset": data[p]} if p == "model" and isinstance(data.get(p), str) else {}
        data = data[p]
    data[last] = value


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"training.lr=3e-4"`` -> ``("training.lr", 0.0003)``: the value is read as YAML (numbers, true/false,
    null, lists, strings), and the key is checked against :class:`RunConfig`.

    Raises:
        ConfigError: no ``=``, a key that is not a config field, or a value that field does not allow
            (:func:`check_value`).
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set: got {text!r}; the form is KEY=VALUE, e.g. training.lr=3e-4")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    check_value(key, value, "--set")  # the key first (check_key), then the value
    return key, value


def dump_yaml(config: BaseModel) -> str:
    """The config as YAML text (round-trips through :func:`load_yaml`). An experiment's ``training`` keeps only
    the fields set explicitly, so its runs get the same recipe defaults when the file is run again."""
    data = config.model_dump(mode="json", exclude_none=True)
    if isinstance(config, ExperimentConfig):
        data["training"] = config.training.model_dump(mode="json", exclude_unset=True, exclude_none=True)
        if not data["training"]:
            del data["training"]
    return yaml.safe_dump(data, sort_keys=False)
