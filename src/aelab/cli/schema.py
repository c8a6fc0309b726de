"""CLI options made from the pydantic schema: one flag per config field, written once.

A field's flag is its name with dashes (``training.batch_size`` -> ``--batch-size``), or the ``flag`` in its
metadata (``data.name`` -> ``--dataset``); its help is the field's docstring, and its default is read from the
field, never restated. Every flag defaults to "not given", so a flag overrides a ``--config`` file only when it
is used. :func:`command` gives a plain function typer can read (a generated ``__signature__``).
"""

from __future__ import annotations

import inspect
import keyword
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Optional, Union

import typer
from pydantic import BaseModel
from rich.markup import escape

from aelab.config import DataConfig, RunConfig, RunOptions, TrainingConfig, check_value

FIELD_SECTIONS: list[tuple[str, type[BaseModel], tuple[str, ...] | None]] = [
    ("", RunConfig, ("seed",)),
    ("data", DataConfig, None),
    ("training", TrainingConfig, None),
    ("model", None, ("sparsity", "tied", "code_activation")),  # type: ignore[list-item]
]
"""(section, class, fields) whose fields become run flags; ``None`` fields = all of them."""


class Flag(typing.NamedTuple):
    key: str
    """Dotted config key (``training.lr``) or a plain name (``runs_dir``)."""
    param: inspect.Parameter
    text: str = ""
    """The flag as typed (``--lr``), which names it in error messages."""
    root: Optional[type[BaseModel]] = None
    """The config class ``key`` is a field of (dotted from it); a value given is checked against that field."""


def _base(annotation: Any) -> tuple[Any, list[str]]:
    """(python type typer can parse, allowed values for Literal) of a field annotation."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base(args[0]) if len(args) == 1 else (str, [])
    if origin is typing.Annotated:
        return _base(typing.get_args(annotation)[0])
    if origin is Literal:
        return str, [str(a) for a in typing.get_args(annotation)]
    if origin is tuple:
        return annotation, []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return str, []  # parsed from its short form (topk:16, gaussian:0.5) by the model itself
    if annotation in (int, float, str, bool, Path):
        return annotation, []
    return str, []


def plain(docstring: str) -> str:
    """A field docstring as one line of terminal help: its whitespace joined, its reST literals (names in double
    backquotes) shown as plain names."""
    return re.sub(r"``(.+?)``", r"\1", " ".join(docstring.split()))


def field_flag(key: str, name: str, field, panel: str, root: Optional[type[BaseModel]] = None) -> Flag:
    """One typer option for the pydantic ``field`` at dotted ``key`` (a field of ``root``, when given: a value
    the field does not allow is then an error naming the flag before anything runs)."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    flag = str(extra.get("flag") or (field.alias if field.alias else name)).replace("_", "-")
    kind, choices = _base(field.annotation)
    help_text = plain(field.description or "")
    if choices and "one of" not in help_text:
        help_text += f" One of: {', '.join(choices)}."
    default = field.get_default(call_default_factory=True)
    if default is not None and default != [] and default != {} and kind is not bool:
        help_text += f" (default: {default})"
    param_name = flag.replace("-", "_") + ("_" if keyword.iskeyword(flag.replace("-", "_")) else "")
    if kind is bool:
        decls = [f"--{flag}/--no-{flag}"]
        help_text += f" (default: {'on' if default else 'off'})"
    else:
        decls = [f"--{flag}"]
    option = typer.Option(
        None,
        *decls,
        help=escape(help_text),
        show_default=False,  # type: ignore[call-overload]
        rich_help_panel=panel,
    )
    return Flag(
        key,
        inspect.Parameter(param_name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=Optional[kind]),
        f"--{flag}",
        root,
    )


def run_flags() -> list[Flag]:
    """Flags for the fields of a run (seed, data.*, training.*, model sparsity/tied/code activation)."""
    from aelab.config import ModelConfig

    flags = []
    for section, cls, names in FIELD_SECTIONS:
        cls = cls or ModelConfig
        panel = {"": "Run", "data": "Data", "training": "Training", "model": "Model (applied to every model)"}[section]
        for name, field in cls.model_fields.items():
            if names is None or name in names:
                key = f"{section}.{name}" if section else name
                flags.append(field_flag(key, name, field, panel, RunConfig))
    return flags


def option_flags() -> list[Flag]:
    """Flags for :class:`RunOptions` (how runs are executed)."""
    return [field_flag(name, name, field, "Execution", RunOptions) for name, field in RunOptions.model_fields.items()]


def command(fn: Callable, extra: list[inspect.Parameter], flags: list[Flag], with_given: bool = True) -> Callable:
    """``fn`` with a signature typer reads: ``extra`` parameters, then one per flag. ``fn`` receives the extra
    parameters by name and (``with_given``) ``given``: dotted key -> value of every flag that was used."""
    names = [p.name for p in extra] + [f.param.name for f in flags]
    if len(set(names)) != len(names):
        raise RuntimeError(f"two CLI options share a name: {sorted({n for n in names if names.count(n) > 1})}")

    def wrapper(**kwargs):
        given = {}
        for f in flags:
            value = kwargs.pop(f.param.name)
            if value is not None:
                given[f.key] = (
                    list(value) if isinstance(value, tuple) else str(value) if isinstance(value, Path) else value
                )
                if f.root is not None:
                    check_value(f.key, given[f.key], f.text, f.root)
        return fn(given=given, **kwargs) if with_given else fn(**kwargs)

    wrapper.__signature__ = inspect.Signature(extra + [f.param for f in flags])  # type: ignore[attr-defined]
    wrapper.__doc__ = fn.__doc__
    wrapper.__name__ = fn.__name__
    return wrapper
