"""The run store: one SQLite index (stdlib ``sqlite3``) per experiment folder.

Each run has a row: id, experiment, name, config (JSON), status (pending / running / done / failed),
metrics (JSON), timings, error, host, pid, attempts. A run is *claimed* in one ``BEGIN IMMEDIATE``
transaction, so two runners on the same store never run the same run: a run can be claimed when it is
pending, when it is failed and retries are asked for, or when it is marked running by a process of this host
that no longer exists (a runner that was killed).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from pathlib import Path

from aelab.errors import AelabError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, experiment TEXT NOT NULL, name TEXT NOT NULL, position INTEGER NOT NULL,
    config TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending', metrics TEXT, error TEXT,
    host TEXT, pid INTEGER, created REAL, started REAL, finished REAL, seconds REAL,
    attempts INTEGER NOT NULL DEFAULT 0
)
"""
STATUSES = ("pending", "running", "done", "failed")


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped) is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


class RunStore:
    """The SQLite index at ``path`` (created when missing)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add(self, experiment: str, runs: list) -> None:
        """Insert runs (``ResolvedRun``) that are not there yet, as pending; existing rows are left alone."""
        now = time.time()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for i, r in enumerate(runs):
                self._db.execute(
                    "INSERT OR IGNORE INTO runs (id, experiment, name, position, config, created) VALUES (?,?,?,?,?,?)",
                    (r.id, experiment, r.name, i, r.config.model_dump_json(), now))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def claim(self, run_id: str, retry_failed: bool = False) -> bool:
        """Mark ``run_id`` running for this process if it may run now; True if this process got it."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute("SELECT status, host, pid FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise AelabError(f"run {run_id} is not in the store {str(self.path)!r}")
            status = row["status"]
            stale = status == "running" and row["host"] == socket.gethostname() and not _alive(row["pid"])
            ok = status == "pending" or stale or (status == "failed" and retry_failed)
            if ok:
                self._db.execute("UPDATE runs SET status='running', host=?, pid=?, started=?, error=NULL, "
                                 "attempts=attempts+1 WHERE id=?",
                                 (socket.gethostname(), os.getpid(), time.time(), run_id))
            self._db.execute("COMMIT")
            return ok
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def finish(self, run_id: str, metrics: dict, seconds: float) -> None:
        self._db.execute("UPDATE runs SET status='done', metrics=?, finished=?, seconds=?, error=NULL WHERE id=?",
                         (json.dumps(metrics), time.time(), seconds, run_id))

    def fail(self, run_id: str, error: str, seconds: float) -> None:
        self._db.execute("UPDATE runs SET status='failed', error=?, finished=?, seconds=? WHERE id=?",
                         (error, time.time(), seconds, run_id))

    def records(self, experiment: str | None = None) -> list[dict]:
        """All rows (of one experiment), in file order, with config and metrics decoded."""
        query = "SELECT * FROM runs" + (" WHERE experiment = ?" if experiment else "") + " ORDER BY position"
        rows = self._db.execute(query, (experiment,) if experiment else ()).fetchall()
        return [self._decode(r) for r in rows]

    def get(self, run_id: str) -> dict | None:
        """The row whose id starts with ``run_id`` (None if none; error if several)."""
        rows = self._db.execute("SELECT * FROM runs WHERE id LIKE ?", (run_id + "%",)).fetchall()
        if len(rows) > 1:
            raise AelabError(f"run id {run_id!r} is ambiguous: {', '.join(r['id'] for r in rows)}")
        return self._decode(rows[0]) if rows else None

    @staticmethod
    def _decode(row: sqlite3.Row) -> dict:
        out = dict(row)
        out["config"] = json.loads(out["config"])
        out["metrics"] = json.loads(out["metrics"]) if out["metrics"] else None
        return out
