"""Commands that run experiments: ``compare``, ``train``, ``run``, ``anomaly`` and ``frontier`` are all an
experiment of runs (:func:`aelab.run_experiment`); their flags come from the schema (:mod:`aelab.cli.schema`)
and any field can be set with ``--set training.lr=3e-4``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from aelab.cli.common import EXIT_FAILED_RUNS, add, argument, console, import_quietly, log, option
from aelab.cli.schema import option_flags, run_flags
from aelab.config import (
    ANOMALY_CORRUPTION,
    ANOMALY_PRESET,
    COMPARE_PRESETS,
    FRONTIER_CODE_SIZES,
    FRONTIER_PRESETS,
    class_list,
)
from aelab.errors import ConfigError

CONFIG = option(
    "config",
    None,
    Optional[Path],
    "Experiment YAML file (the one dialect of compare, train and run); flags given here override it.",
    "--config",
    panel="Experiment",
)
SETS = option(
    "set_",
    None,
    Optional[list[str]],
    "Set any config field, dotted: --set training.lr=3e-4 (repeat it).",
    "--set",
    panel="Experiment",
)
NAME = option(
    "name",
    None,
    Optional[str],
    "Experiment folder name (default: the command and a hash of its runs, so the same command finds its runs again).",
    "--name",
    panel="Experiment",
)
RESUME = option(
    "resume",
    False,
    bool,
    "Continue the experiment --name (re-running the same command does this "
    "too): finished runs are skipped, cut runs resume from their last checkpoint.",
    "--resume",
    panel="Experiment",
)
MODELS = option(
    "models",
    None,
    Optional[str],
    f"Comma-separated presets (default: {','.join(COMPARE_PRESETS)}).",
    "--models",
    panel="Experiment",
)
MODEL = option(
    "model",
    None,
    Optional[str],
    "Preset to train (see 'aelab models'; default: linear-3).",
    "--model",
    panel="Experiment",
)
FILE = argument("experiment_file", Path, "Experiment YAML file")
NORMAL = option(
    "normal_class",
    "all",
    str,
    "Normal classes, each in turn: all, an index (3), a range (0..9) or a list (0,3,5).",
    "--normal-class",
    panel="Data",
)
ANOMALY_MODELS = option(
    "models",
    None,
    Optional[str],
    f"Comma-separated presets (default: {ANOMALY_PRESET}); each trained to denoise ({ANOMALY_CORRUPTION}) "
    "unless --denoise or training.corruption says otherwise.",
    "--models",
    panel="Experiment",
)
CODE_SIZES = option(
    "code_sizes",
    ",".join(map(str, FRONTIER_CODE_SIZES)),
    str,
    "Code sizes: aelab's res preset and PCA at each, and the tutorial presets of these sizes.",
    "--code-sizes",
    panel="Models",
)
FRONTIER_RES = option(
    "presets",
    FRONTIER_PRESETS[0],
    str,
    f"aelab's presets: {FRONTIER_PRESETS[0]} (the best at each code size: res-v3-2, res-v3-3, res-v2-10 ... "
    f"res-v2-64), or an older generation: {FRONTIER_PRESETS[1]} (res-v2-<size>) or {FRONTIER_PRESETS[2]} (the "
    "first, res-<size>).",
    "--presets",
    panel="Models",
)
TUTORIAL = option(
    "tutorial",
    True,
    bool,
    "Also train the tutorial presets whose code has one of the sizes.",
    "--tutorial/--no-tutorial",
    panel="Models",
)


def _experiment(
    config: Optional[Path],
    name: Optional[str],
    sets: Optional[list[str]],
    given: dict,
    models: Optional[list[str]] = None,
    flag: str = "--models",
):
    """(experiment, overrides of run fields, execution options) from --config, --name, --models, --set and the
    schema flags."""
    from aelab.config import (
        PRESET_NAMES,
        ExperimentConfig,
        RunOptions,
        parse_assignment,
        parse_config,
        read_yaml_mapping,
    )

    data = read_yaml_mapping(config) if config is not None else {}
    if name is not None:
        data["name"] = name
    experiment = parse_config(ExperimentConfig, data, source=str(config) if config else "options")
    if models is not None:
        if not models:
            raise ConfigError(f"{flag}: give at least one preset name, e.g. linear-3,conv-64")
        for unknown in (m for m in models if m not in PRESET_NAMES):
            raise ConfigError(f"{flag}: got {unknown!r}; allowed: {', '.join(PRESET_NAMES)}")
        chosen = parse_config(ExperimentConfig, {"models": models}, source=flag).models
        experiment = experiment.model_copy(update={"models": chosen})
    options = {k: v for k, v in given.items() if k in RunOptions.model_fields}
    overrides = {k: v for k, v in given.items() if k not in options}
    for text in sets or []:
        key, value = parse_assignment(text)
        overrides[key] = value
    opts = parse_config(RunOptions, options, source="options").model_dump()
    opts["before_training"] = _before_training
    return experiment, overrides, opts


def _before_training() -> None:
    """Once before this process trains: import ``torch._dynamo`` quietly (:func:`aelab.cli.common.import_quietly`),
    which every ``torch.optim`` optimizer imports on its first use."""
    import_quietly("torch._dynamo")


def _names(text: Optional[str]) -> Optional[list[str]]:
    return None if text is None else [m.strip() for m in text.split(",") if m.strip()]


def _check_resume(resume: bool, name: Optional[str], runs_dir: Path) -> None:
    if not resume:
        return
    if not name:
        raise ConfigError("--resume needs --name: the experiment to continue (or run the same command again)")
    from aelab.experiments.jobs import load_experiment

    load_experiment(name, runs_dir)  # an error naming the experiments there if it does not exist


def _table(title: str, rows: list[dict], baselines: list[dict], cols) -> Table:
    from aelab.models.measures import is_baseline

    table = Table(title=title)
    for m in cols:
        table.add_column(m.heading, justify="left" if m.key == "model" else "right")
    for row in rows:
        table.add_row(*(m.format(row) for m in cols))
    for row in baselines:
        table.add_row(*(m.format(row) for m in cols), style="dim" if is_baseline(row) else "cyan")
    return table


def print_result(result) -> None:
    """The comparison table, then each side table (generative, one-class) of which some run has measures, the
    failed runs, the report's path; exit code 1 when a run failed."""
    from aelab.models.measures import SIDE_TABLES
    from aelab.models.table import columns

    if not result.name or result.shown:  # a follower of a torchrun group, or the processes printed it
        if result.failed:
            raise typer.Exit(EXIT_FAILED_RUNS)
        return
    test = sorted({str(r["test_images"]) for r in result.rows})
    console.print(
        _table(
            f"{result.name}: test set ({', '.join(test) or '-'} images)",
            result.rows,
            result.baselines,
            columns(result.rows + result.baselines, "main"),
        )
    )
    for table, title in SIDE_TABLES.items():
        side = columns(result.rows, table)
        if len(side) > 1:  # beside the model's name, some row has a measure of this table
            console.print(_table(f"{result.name}: {title}", result.rows, [], side))
    if result.mean_roc_auc is not None:
        from aelab.evaluation.anomaly import ONE_CLASS_SCORES

        score = result.rows[0].get("anomaly_score")
        others = [
            f"{kind} {sum(aucs) / len(aucs):.4f}"
            for kind in ONE_CLASS_SCORES
            if (aucs := [r[f"roc_auc_{kind}"] for r in result.rows if r.get(f"roc_auc_{kind}") is not None])
        ]
        console.print(
            f"mean ROC-AUC over {len(result.rows)} runs: {result.mean_roc_auc:.4f}"
            + (
                f" ({score}; " + ", ".join(others) + "; per class beside published results in the report)"
                if others
                else ""
            )
        )
    for r in result.failed:
        console.print(f"failed {r['name']} ({r['id']}): {r['error']}", style="red", soft_wrap=True)
    console.print(f"report: {result.folder.report}")
    if result.failed:
        raise typer.Exit(EXIT_FAILED_RUNS)


def _compare(config, set_, name, resume, models, given):
    """Train several autoencoders on the same data and compare them on the test set (default: the Covalent
    tutorial's linear-3 vs conv-64 on Fashion-MNIST, 50 epochs, batch 64, Adam 1e-3, MSE)."""
    from aelab.experiments.jobs import compare

    experiment, overrides, opts = _experiment(config, name, set_, given, _names(models))
    _check_resume(resume, experiment.name, opts["runs_dir"])
    print_result(compare(experiment, overrides, log=log, **opts))


def _train(config, set_, name, resume, model, given):
    """Train one autoencoder and evaluate it: an experiment of one run."""
    from aelab.experiments.jobs import run_experiment
    from aelab.experiments.resolve import resolve

    experiment, overrides, opts = _experiment(config, name, set_, given, None if model is None else [model], "--model")
    count = len(resolve(experiment, overrides))
    if count != 1:
        raise ConfigError(f"train runs one model, got {count} runs; use 'aelab compare' or 'aelab run' for several")
    _check_resume(resume, experiment.name, opts["runs_dir"])
    print_result(run_experiment(experiment, overrides, log=log, kind="train", **opts))


def _run(experiment_file, set_, given):
    """Run an experiment file: every run not done yet; finished runs are skipped, cut runs resume."""
    from aelab.experiments.jobs import run_experiment

    _, overrides, opts = _experiment(None, None, set_, given)
    print_result(run_experiment(experiment_file, overrides, log=log, **opts))


def _class_list(text: str) -> list[int] | None:
    """``all`` -> None (every class), ``3`` -> [3], ``0..9`` -> [0, ..., 9], ``0,3,5`` -> [0, 3, 5].

    Raises:
        ConfigError: anything else.
    """
    text = text.strip()
    if text == "all":
        return None
    try:
        if ".." in text:
            a, b = (int(v) for v in text.split(".."))
            if a > b:
                raise ValueError
            return list(range(a, b + 1))
        return sorted(set(class_list(text))) or None  # type: ignore[call-overload]
    except ValueError:
        raise ConfigError(
            f"--normal-class: got {text!r}; allowed: all, a class index (3), a range (0..9) or a list (0,3,5)"
        ) from None


def _anomaly(config, set_, name, resume, models, normal_class, given):
    """One-class anomaly detection benchmark: for each normal class in turn, train on that class only, score
    every test image by how its reconstruction differs along the encoder (RaPP's NAP x SAP), and report ROC-AUC
    and PR-AUC of the class vs the rest (default: conv-16 trained to denoise, every class of the dataset; the
    mean ROC-AUC is in the summary)."""
    from aelab.experiments.jobs import anomaly

    classes = _class_list(normal_class)
    experiment, overrides, opts = _experiment(config, name, set_, given, _names(models))
    _check_resume(resume, experiment.name, opts["runs_dir"])
    print_result(anomaly(experiment, classes, overrides, log=log, **opts))


def _frontier(config, set_, name, resume, code_sizes, tutorial, presets, given):
    """The rate-distortion curve: train aelab's best preset at each code size (generation res-v3, each with its
    own recipe; --presets res-v2 or res: an older generation) and the tutorial presets at the same code sizes
    (the tutorials' recipe), with PCA at every size; draws test MSE and PSNR against code size, one line per
    family, into rate_distortion.png and the report."""
    from aelab.experiments.jobs import frontier

    try:
        sizes = [int(v) for v in code_sizes.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(
            f"--code-sizes: got {code_sizes!r}; allowed: comma-separated numbers from "
            f"{','.join(map(str, FRONTIER_CODE_SIZES))}"
        ) from None
    experiment, overrides, opts = _experiment(config, name, set_, given)
    _check_resume(resume, experiment.name, opts["runs_dir"])
    result = frontier(experiment, sizes, tutorial, overrides, presets, log=log, **opts)
    if result.folder.rate_distortion.is_file():
        console.print(f"rate-distortion figure: {result.folder.rate_distortion}")
    print_result(result)


def register(app: typer.Typer) -> None:
    """Add the experiment commands to ``app``."""
    flags = run_flags() + option_flags()
    add(app, "compare", _compare, [CONFIG, SETS, NAME, RESUME, MODELS], flags)
    add(app, "train", _train, [CONFIG, SETS, NAME, RESUME, MODEL], flags)
    add(app, "run", _run, [FILE, SETS], flags)
    add(
        app,
        "anomaly",
        _anomaly,
        [CONFIG, SETS, NAME, RESUME, ANOMALY_MODELS, NORMAL],
        [f for f in flags if f.key != "data.normal_classes"],
    )
    add(app, "frontier", _frontier, [CONFIG, SETS, NAME, RESUME, CODE_SIZES, TUTORIAL, FRONTIER_RES], flags)
