"""The shape of the house, checked on the source (the import layers are checked by import-linter in CI):
nothing outside ``models/`` asks which model class it holds or branches on a variant flag; functions and
modules stay small; no two modules are named almost alike."""

import ast
import itertools
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "aelab"
VARIANT_FLAGS = {
    "conditional",
    "generative",
    "vectors",
    "variational",
    "quantizer",
    "tied",
    "sparsity",
    "is_vae",
    "is_vq",
    "classes",
}
"""Attributes that name a model variant: a condition on them outside models/ (and the schema that defines them,
config/) is a branch on the variant instead of a question to the model."""
MAX_FUNCTION, MAX_MODULE = 60, 400


def _modules():
    return sorted(p for p in SRC.rglob("*.py"))


def _outside_models():
    return [p for p in _modules() if p.relative_to(SRC).parts[0] not in ("models", "config")]


def _model_classes() -> set[str]:
    import aelab.models.autoencoder as base
    from aelab.models import FAMILIES

    return {cls.__name__ for cls in FAMILIES.values()} | {base.AutoEncoder.__name__}


def _conditions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.If, ast.IfExp, ast.While)):
            yield node.test
        elif isinstance(node, ast.comprehension):
            yield from node.ifs


def test_nothing_outside_models_asks_for_a_model_class_or_branches_on_a_variant_flag():
    classes = _model_classes()
    assert {"AutoEncoder", "VariationalAutoEncoder", "VQAutoEncoder"} <= classes
    found = []
    for path in _outside_models():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("isinstance", "issubclass", "type"):
                names = {n.id if isinstance(n, ast.Name) else getattr(n, "attr", None) for n in ast.walk(node)}
                if names & classes:
                    found.append(f"{path.relative_to(SRC)}:{node.lineno} isinstance of a model class")
        for test in _conditions(tree):
            flags = {n.attr for n in ast.walk(test) if isinstance(n, ast.Attribute)} & VARIANT_FLAGS
            if flags:
                found.append(f"{path.relative_to(SRC)}:{test.lineno} branches on {sorted(flags)}")
    assert found == []


def test_the_check_finds_what_it_looks_for(tmp_path):
    """The AST checks above catch an isinstance of a model class and a branch on a variant flag."""
    tree = ast.parse("if isinstance(m, VQAutoEncoder):\n    pass\nx = 1 if model.conditional else 2\n")
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and n.func.id == "isinstance"]
    assert {n.id for n in ast.walk(calls[0]) if isinstance(n, ast.Name)} & _model_classes() == {"VQAutoEncoder"}
    flags = [{n.attr for n in ast.walk(t) if isinstance(n, ast.Attribute)} & VARIANT_FLAGS for t in _conditions(tree)]
    assert flags == [set(), {"conditional"}]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_functions_and_modules_stay_small(path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION
    ]
    assert long == []


def _one_letter_apart(a: str, b: str) -> bool:
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b)) == 1
    short, long = sorted((a, b), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def test_no_two_modules_are_named_one_letter_apart():
    names = sorted({p.stem for p in _modules() if p.stem != "__init__"} | {p.name for p in SRC.iterdir() if p.is_dir()})
    assert _one_letter_apart("analysis", "analyses") and _one_letter_apart("spec", "specs")
    assert [(a, b) for a, b in itertools.combinations(names, 2) if _one_letter_apart(a, b)] == []
