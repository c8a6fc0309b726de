"""What every config class shares: unknown keys are errors, field docstrings are the help texts, and the short
command-line forms (``topk:16``, ``gaussian:0.5``) of the variant settings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Activation = Literal["relu", "leaky_relu", "tanh", "sigmoid", "gelu", "silu", "elu", "identity"]
"""The activations a spec can name (``identity``: none)."""


class Strict(BaseModel):
    """A config class: unknown keys are errors, assignments are validated, field docstrings are descriptions."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)


def flag(name: str) -> dict:
    """Field metadata: the CLI flag of a field when it is not the field's own name (``--dataset`` for
    ``data.name``)."""
    return {"json_schema_extra": {"flag": name}}


def short_form(value: Any, kinds: dict[str, list[str]]) -> Any:
    """Parse the short CLI form ``kind:a:b`` into ``{"kind": kind, names[0]: a, ...}`` with the names in
    ``kinds[kind]``; any other value is returned as it is.

    Raises:
        ValueError: an unknown kind, the wrong number of parts, or a part that is not a number.
    """
    if not isinstance(value, str):
        return value
    kind, *args = value.split(":")
    if kind not in kinds:
        raise ValueError(f"got {value!r}; allowed kinds: {', '.join(kinds)}")
    names = kinds[kind]
    if len(args) != len(names):
        form = ":".join([kind, *(n.upper() for n in names)])
        raise ValueError(f"got {value!r}; the form is {form}")
    out: dict[str, Any] = {"kind": kind}
    for name, arg in zip(names, args):
        try:
            out[name] = int(arg) if name == "k" and arg.isdigit() else float(arg)
        except ValueError:
            raise ValueError(f"got {value!r}; {name} must be a number") from None
    return out
