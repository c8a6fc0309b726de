"""``aelab runs``: what the run store of a runs folder holds (every run of every experiment, or one run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from aelab.cli.common import RUNS_DIR, add, argument, console
from aelab.errors import AelabError, ConfigError


def _runs_table(records: list[dict], title: str) -> None:
    table = Table(title=title)
    for col in ("id", "experiment", "name", "status", "test MSE", "PSNR (dB)", "seconds", "attempts", "error"):
        table.add_column(col, justify="right" if col in ("test MSE", "PSNR (dB)", "seconds", "attempts") else "left")
    for r in records:
        m = r["metrics"] or {}
        table.add_row(
            r["id"],
            ", ".join(r["experiments"]),
            r["name"],
            r["status"],
            f"{m['test_mse']:.5f}" if m else "-",
            f"{m['test_psnr']:.2f}" if m.get("test_psnr") else "-",
            f"{r['seconds']:.1f}" if r["seconds"] else "-",
            str(r["attempts"]),
            (r["error"] or "")[:80],
        )
    console.print(table)


def _show(store, run_id: str, runs_dir: Path) -> None:
    import yaml

    rec = store.get(run_id)
    if rec is None:
        raise AelabError(f"no run with id {run_id!r} under {str(runs_dir)!r}")
    console.print(
        f"{rec['id']} {rec['name']} ({', '.join(rec['experiments'])}): {rec['status']}"
        f"{' - ' + rec['error'] if rec['error'] else ''}",
        soft_wrap=True,
    )
    console.print(f"folder: {runs_dir / rec['folder']}")
    console.print(yaml.safe_dump(rec["config"], sort_keys=False))
    if rec["metrics"]:
        console.print_json(json.dumps(rec["metrics"]))


def runs(args: Optional[list[str]], runs_dir: Path) -> None:
    """List every run in the runs folder (of one experiment), or 'show RUN_ID' for one run's config, metrics
    and files."""
    from aelab.experiments.folders import store_path
    from aelab.experiments.store import RunStore

    args = args or []
    if not store_path(runs_dir).is_file():
        raise AelabError(
            f"no runs under {str(runs_dir)!r} (no {store_path(runs_dir).name}); train something with "
            "'aelab compare', 'train' or 'run'"
        )
    with RunStore(store_path(runs_dir)) as store:
        if args and args[0] == "show":
            if len(args) != 2:
                raise ConfigError("usage: aelab runs show RUN_ID")
            return _show(store, args[1], runs_dir)
        if len(args) > 1:
            raise ConfigError("usage: aelab runs [EXPERIMENT] | aelab runs show RUN_ID")
        if args and args[0] not in store.experiments():
            raise AelabError(
                f"no experiment {args[0]!r} under {str(runs_dir)!r}; there: {', '.join(store.experiments()) or 'none'}"
            )
        records = store.records(args[0] if args else None)
    _runs_table(records, f"{len(records)} runs" + (f" of {args[0]}" if args else f" under {runs_dir}"))


def register(app: typer.Typer) -> None:
    """Add ``runs`` to ``app``."""
    add(
        app,
        "runs",
        runs,
        [argument("args", Optional[list[str]], "[EXPERIMENT] to list, or: show RUN_ID", None), RUNS_DIR],
    )
