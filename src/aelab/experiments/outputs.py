"""What an experiment writes over its runs: the comparison table with the PCA and mean-image baselines
(``metrics.json``), the loss curves, the reconstructions per epoch, the rate-distortion figure and the report."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from aelab.experiments.engine import dataset_for
from aelab.experiments.folders import ExperimentFolder, RunFolder
from aelab.experiments.resolve import ResolvedRun
from aelab.experiments.store import RunStore
from aelab.io import atomic_write_text


@dataclass
class ExperimentResult:
    """What an experiment produced (also what ``aelab compare`` prints)."""

    name: str
    folder: ExperimentFolder
    records: list[dict]
    """The store's records of its runs, in order (status, metrics, error, folder, ...)."""
    rows: list[dict] = field(default_factory=list)
    """Metrics rows of the finished runs."""
    baselines: list[dict] = field(default_factory=list)
    """PCA rows at the runs' code sizes, then the mean-image row(s)."""
    summary: str = ""
    shown: bool = False
    """The table was printed already (by the processes ``--nproc-per-node`` launched)."""

    @property
    def mean_roc_auc(self) -> float | None:
        """Mean ROC-AUC of the finished one-class runs (``aelab anomaly``), or None when no run has one."""
        aucs = [row["roc_auc"] for row in self.rows if "roc_auc" in row]
        return sum(aucs) / len(aucs) if aucs else None

    @property
    def run_dirs(self) -> list[Path]:
        return [self.folder.path.parent / r["folder"] for r in self.records]

    @property
    def failed(self) -> list[dict]:
        """The records of the runs that failed."""
        return [r for r in self.records if r["status"] == "failed"]

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """In Jupyter: the comparison table and the loss curves (HTML), and the loss curves as a PNG."""
        import base64
        import html

        from aelab.figures.report import image_html, tables_html

        figures = [p for p in (self.folder.loss_curves, self.folder.rate_distortion) if p.is_file()]
        parts = [
            f"<h3>{html.escape(self.name)}</h3><p>{html.escape(self.summary)}</p>",
            tables_html(self.rows, self.baselines),
            *[image_html(p) for p in figures],
            f"<p>report: {html.escape(str(self.folder.report))}</p>",
        ]
        bundle = {
            "text/html": "\n".join(parts),
            "text/plain": f"ExperimentResult({self.name!r}, {len(self.rows)} runs)",
        }
        if self.folder.loss_curves.is_file():
            bundle["image/png"] = base64.b64encode(self.folder.loss_curves.read_bytes()).decode("ascii")
        return bundle


def by_split(runs: list[ResolvedRun]) -> dict[str, list[ResolvedRun]]:
    """Runs grouped by the images and splits they see (data config and seed), in order."""
    groups: dict[str, list[ResolvedRun]] = {}
    for r in runs:
        groups.setdefault(r.config.data.split_key(r.config.seed), []).append(r)
    return groups


def _baseline_file(digest: str) -> Path:
    """Where the baselines of one dataset split are kept: aelab's data cache, shared by every runs folder."""
    from aelab.io import cache_dir

    return cache_dir() / "baselines" / f"{digest}.json"


def _cached(digest: str, key: str, compute: Callable[[], Any]) -> Any:
    """The baseline ``key`` of a dataset split from its cache file, or computed (None: cannot be) and cached."""
    path = _baseline_file(digest)
    known = json.loads(path.read_text()) if path.is_file() else {}
    if key not in known:
        value = compute()
        if value is None:
            return None
        known = json.loads(path.read_text()) if path.is_file() else {}  # another process may have added some
        known[key] = value
        atomic_write_text(path, json.dumps(known, indent=1))
    return known[key]


def _pca(members: list[ResolvedRun], d: int) -> dict | None:
    from aelab.evaluation.pca import pca_baseline

    dataset = dataset_for(members[0].config)
    if d > min(len(dataset.train), dataset.train.pixels):
        return None  # PCA cannot have more components than images or pixels
    return pca_baseline(dataset.train, dataset.test, d, seed=members[0].config.seed)


def _mean_image(members: list[ResolvedRun]) -> float:
    from aelab.evaluation import mean_image_mse

    dataset = dataset_for(members[0].config)
    return mean_image_mse(dataset.train, dataset.test)


def baselines(runs: list[ResolvedRun], rows_by_id: dict[str, dict]) -> list[dict]:
    """PCA at every code size of the finished runs of each dataset, then the mean-image row of each dataset
    (cached per dataset split in aelab's data cache, ``$AELAB_DATA/baselines/``: computed once, whichever runs
    folder asks)."""
    groups = by_split(runs)
    pca_rows, mean_rows = [], []
    for key, members in groups.items():
        done = [rows_by_id[r.id] for r in members if r.id in rows_by_id]
        if not done:
            continue
        suffix = f", {members[0].config.data.name} seed {members[0].config.seed}" if len(groups) > 1 else ""
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        for d in sorted({row["code_size"] for row in done}):
            row = _cached(digest, f"pca/{d}", partial(_pca, members, d))
            if row is not None:
                pca_rows.append({**row, "kind": "pca", "model": row["model"] + suffix})
        mse = _cached(digest, "mean-image", partial(_mean_image, members))
        mean_rows.append({"model": "mean image (baseline)" + suffix, "kind": "mean-image", "test_mse": mse})
    return pca_rows + mean_rows


def summary(runs: list[ResolvedRun], result: ExperimentResult) -> str:
    """One paragraph: how many runs finished, on what data and test set, on which device."""
    devices = sorted({row["device"] for row in result.rows})
    data_names = sorted({r.config.data.name for r in runs})
    text = (
        f"{len(runs)} runs ({len(result.rows)} finished) on {', '.join(data_names)}; test set "
        f"{', '.join(sorted({str(row['test_images']) for row in result.rows}))} images; "
        f"trained on {', '.join(devices) or '-'}."
    )
    if any(r.config.data.name == "array" for r in runs):
        from aelab.analyses import ANALYSES

        skipped = ", ".join(a.name for a in ANALYSES if "images" in a.needs)
        text += f" Vector data: no PSNR/SSIM and no image analyses ({skipped})."
    if result.mean_roc_auc is not None:
        text += (
            f" Anomaly detection (one-class training): mean ROC-AUC {result.mean_roc_auc:.4f} over "
            f"{sum('roc_auc' in row for row in result.rows)} runs."
        )
    return text


def _histories(done: list[ResolvedRun], folders: dict[str, RunFolder]) -> dict[str, Any]:
    from aelab.training import History, load_checkpoint

    return {
        r.id: History.from_state(load_checkpoint(folders[r.id].history)["history"])
        for r in done
        if folders[r.id].history.is_file()
    }


def _curves(result: ExperimentResult, done: list[ResolvedRun], histories: dict) -> list[Path]:
    """The loss curves of every run, and the reconstructions of each group of runs on the same images at every
    logged epoch; only what this call wrote (a figure left from an earlier definition is not shown)."""
    import torch

    from aelab.figures import loss_curves, reconstruction_grid, save_figure
    from aelab.models import family_of

    if not histories:
        return []
    units = {r.name: family_of(r.config.model).loss_unit(r.config.training.loss) for r in done}
    written = [
        save_figure(
            loss_curves(
                {r.name: histories[r.id] for r in done if r.id in histories}, next(iter(units.values())), units
            ),
            result.folder.loss_curves,
        )
    ]
    groups = by_split(
        [r for r in done if r.id in histories and histories[r.id].snapshot_originals.dtype == torch.uint8]
    )  # vector data has no pictures
    for g, members in enumerate(groups.values()):
        group = "" if len(groups) == 1 else f"{members[0].config.data.name}-{g + 1}"
        first = histories[members[0].id]
        for epoch in sorted({e for r in members for e in histories[r.id].snapshots}):
            rows = {r.name: histories[r.id].snapshots[epoch] for r in members if epoch in histories[r.id].snapshots}
            written.append(
                save_figure(
                    reconstruction_grid(first.snapshot_originals, rows, title=f"Epoch {epoch}"),
                    result.folder.reconstructions(epoch, group),
                )
            )
    return written


def rate_distortion(result: ExperimentResult, done: list[ResolvedRun]) -> Path | None:
    """Draw ``rate_distortion.png`` when the finished runs have two or more code sizes: per line (a model family,
    or the presets' recipe) the best run at each size, and PCA; None (and no figure) otherwise."""
    from aelab.figures import rate_distortion as draw
    from aelab.figures import save_figure
    from aelab.models import family_of

    rows = {r.id: result.rows[i] for i, r in enumerate(done)}
    if len({row["code_size"] for row in rows.values()}) < 2:
        return None
    lines: dict[str, dict[int, dict]] = {}
    for r in done:
        row = rows[r.id]
        best = lines.setdefault(family_of(r.config.model).figure_line(r.config.model.filled()), {})
        if row["code_size"] not in best or row["test_mse"] < best[row["code_size"]]["test_mse"]:
            best[row["code_size"]] = row
    pca = [row for row in result.baselines if row.get("kind") == "pca"]
    figure = {"PCA": pca} if pca else {}
    figure.update({name: list(best.values()) for name, best in lines.items()})
    return save_figure(draw(figure), result.folder.rate_distortion)


def _sections(done: list[ResolvedRun], folders: dict[str, RunFolder], rows: list[dict], root: Path) -> list:
    from aelab.analyses import ANALYSES
    from aelab.figures.report import RunSection

    sections = []
    for r, row in zip(done, rows):
        f = folders[r.id]
        own = [
            (heading, f.figure(stem))
            for stem, heading in (("layerwise", "Greedy layer-wise pretraining"), ("denoising", "Denoising"))
        ]
        analyses = [(a, f.analysis(a.name), f.analysis(a.name, ".json")) for a in ANALYSES if a.in_report]
        failed = [e.replace(f" of {r.config.label}", "") for e in row.get("analysis_errors", [])]
        skipped = row.get("analyses_skipped", [])
        sections.append(RunSection(r.name, r.id, str(f.path.relative_to(root)), own, analyses, failed, skipped))
    return sections


def _compression(done: list[ResolvedRun], folders: dict[str, RunFolder]) -> list[dict]:
    """Each run's stored code (its 8-bit, entropy- and transform-coded rows, or a VQ-VAE's index grid) with JPEG's
    and WebP's bytes at its PSNR; then the JPEG, WebP and PNG files of the test images once (the same for every
    run on the same test images: they do not depend on the model)."""
    out: list[dict] = []
    codecs: list[dict] = []
    used_by: list[list[str]] = []
    every: set[str] = set()  # the runs with a compression analysis
    for r in done:
        path = folders[r.id].analysis("compression", ".json")
        if not path.is_file():
            continue
        every.add(r.name)
        for row in json.loads(path.read_text()):
            if row["storage"] in ("float32", "float16"):
                continue
            if "quality" not in row:  # the model's own rows, and the codecs interpolated at its PSNR
                out.append({"model": r.name, **row})
            elif row in codecs:
                used_by[codecs.index(row)].append(r.name)
            else:
                codecs.append(row)
                used_by.append([r.name])
    return out + [
        {"model": "image codecs" if set(names) == every else f"image codecs ({', '.join(names)})", **row}
        for row, names in zip(codecs, used_by)
    ]


def write_outputs(
    result: ExperimentResult, runs: list[ResolvedRun], store: RunStore, log: Callable[[str], None]
) -> None:
    """Fill ``result`` (rows, baselines, summary) and write the experiment folder's table, figures and report."""
    from aelab.evaluation.one_class_table import one_class_table
    from aelab.figures.report import Report, write_report

    root = result.folder.path.parent
    by_id = {r["id"]: r for r in result.records}
    done = [r for r in runs if by_id[r.id]["status"] == "done"]
    result.rows = [by_id[r.id]["metrics"] for r in done]
    result.baselines = baselines(runs, {r.id: by_id[r.id]["metrics"] for r in done}) if done else []
    result.summary = summary(runs, result)
    failed = [{"id": r["id"], "name": r["name"], "error": r["error"]} for r in result.failed]
    atomic_write_text(
        result.folder.metrics,
        json.dumps(
            {
                "experiment": result.name,
                "summary": result.summary,
                "runs": result.rows,
                "baselines": result.baselines,
                "failed": failed,
            },
            indent=2,
        ),
    )
    folders = {r.id: RunFolder(root / by_id[r.id]["folder"]) for r in runs}
    histories = _histories(done, folders)
    figures = _curves(result, done, histories)
    write_report(
        result.folder.report,
        Report(
            f"aelab report: {result.name}",
            result.summary,
            result.rows,
            result.baselines,
            failed,
            figures[:1],
            figures[1:],
            _sections(done, folders, result.rows, root),
            result.folder.config.read_text(),
            rate_distortion(result, done),
            _compression(done, folders),
            one_class_table(result.rows, runs[0].config.data.name if runs else ""),
        ),
    )
    log(f"wrote {result.folder.path}/ : metrics.json, loss_curves.png, reconstructions_epoch_*.png, report.html")
