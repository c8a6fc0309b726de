"""The run store: one SQLite index (stdlib ``sqlite3``) per runs root, ``<runs>/aelab.sqlite``.

* ``runs``: one row per run id: name, config (JSON), folder (relative to the root), status
  (pending / running / done / failed), metrics (JSON), timings, error, host, pid, attempts.
* ``members``: which runs an experiment has, in its order (a run can belong to several experiments: the
  same config is the same run, trained once).
* ``experiments``: name and definition (YAML) of every experiment.
* ``cache``: unused since the baselines moved to aelab's data cache (kept so older stores open unchanged).

The store belongs to the driver: the process that runs an experiment opens it, claims runs, hands each run's
config and folder to a worker (this process, a local process, a Ray task on any node) and records what comes
back. Workers never open it (SQLite's locking is not safe over network file systems, and its WAL needs one host).

A run is *claimed* with a *lease* in one ``BEGIN IMMEDIATE`` transaction, so two drivers on the same store never
run the same run: the driver's heartbeat renews the leases of its runs while they are in flight (:meth:`renew`);
a run can be claimed when it is pending, when it is failed and retries are asked for, when its lease has expired
(its driver died, or lost its node: taken over on any host), or when it is marked running by a process of this
host that no longer exists (a runner killed before the lease expired).
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
    id TEXT PRIMARY KEY, name TEXT NOT NULL, config TEXT NOT NULL, folder TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', metrics TEXT, error TEXT,
    host TEXT, pid INTEGER, created REAL, started REAL, finished REAL, seconds REAL,
    attempts INTEGER NOT NULL DEFAULT 0, lease_owner TEXT, lease_expires REAL
);
CREATE TABLE IF NOT EXISTS members (
    experiment TEXT NOT NULL, run_id TEXT NOT NULL, position INTEGER NOT NULL, PRIMARY KEY (experiment, run_id)
);
CREATE TABLE IF NOT EXISTS experiments (name TEXT PRIMARY KEY, definition TEXT NOT NULL, updated REAL);
CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
STATUSES = ("pending", "running", "done", "failed")
LEASE_COLUMNS = {"lease_owner": "TEXT", "lease_expires": "REAL"}
"""Columns added after the first stores were written (added to an older store when it is opened)."""


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
    """The SQLite index at ``path`` (created when missing). Use as a context manager or call :meth:`close`."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        known = {row[1] for row in self._db.execute("PRAGMA table_info(runs)")}
        for column, kind in LEASE_COLUMNS.items():
            if column not in known:
                self._db.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def _transaction(self, fn):
        self._db.execute("BEGIN IMMEDIATE")
        try:
            out = fn()
            self._db.execute("COMMIT")
            return out
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def add_experiment(self, name: str, definition: str, runs: list, folders: list[str]) -> None:
        """Record experiment ``name`` as these runs (``ResolvedRun``) in this order; runs not in the store yet
        are inserted as pending with their folder; runs already there (done or not) are left as they are."""
        now = time.time()

        def write():
            self._db.execute(
                "INSERT INTO experiments (name, definition, updated) VALUES (?,?,?) ON CONFLICT(name) "
                "DO UPDATE SET definition=excluded.definition, updated=excluded.updated",
                (name, definition, now),
            )
            self._db.execute("DELETE FROM members WHERE experiment = ?", (name,))
            for i, (r, folder) in enumerate(zip(runs, folders)):
                self._db.execute(
                    "INSERT OR IGNORE INTO runs (id, name, config, folder, created) VALUES (?,?,?,?,?)",
                    (r.id, r.name, r.config.model_dump_json(), folder, now),
                )
                self._db.execute("INSERT INTO members (experiment, run_id, position) VALUES (?,?,?)", (name, r.id, i))

        self._transaction(write)

    def claim(self, run_id: str, owner: str = "", ttl: float = 120.0, retry_failed: bool = False) -> bool:
        """Mark ``run_id`` running under a lease of ``owner`` (a driver's id) for ``ttl`` seconds, if it may run
        now; True if ``owner`` got it."""

        def write():
            row = self._db.execute(
                "SELECT status, host, pid, lease_expires FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            if row is None:
                raise AelabError(f"run {run_id} is not in the store {str(self.path)!r}")
            status, now = row["status"], time.time()
            expired = row["lease_expires"] is not None and row["lease_expires"] < now
            killed = row["host"] == socket.gethostname() and not _alive(row["pid"])
            ok = status == "pending" or (status == "running" and (expired or killed))
            ok = ok or (status == "failed" and retry_failed)
            if ok:
                self._db.execute(
                    "UPDATE runs SET status='running', host=?, pid=?, started=?, error=NULL, attempts=attempts+1, "
                    "lease_owner=?, lease_expires=? WHERE id=?",
                    (socket.gethostname(), os.getpid(), now, owner, now + ttl, run_id),
                )
            return ok

        return self._transaction(write)

    def renew(self, owner: str, ttl: float) -> int:
        """Extend the leases of ``owner``'s running runs to ``ttl`` seconds from now; how many it holds."""
        cursor = self._db.execute(
            "UPDATE runs SET lease_expires=? WHERE lease_owner=? AND status='running'", (time.time() + ttl, owner)
        )
        return cursor.rowcount

    def finish(self, run_id: str, metrics: dict, seconds: float) -> None:
        self._db.execute(
            "UPDATE runs SET status='done', metrics=?, finished=?, seconds=?, error=NULL, lease_expires=NULL WHERE id=?",
            (json.dumps(metrics), time.time(), seconds, run_id),
        )

    def fail(self, run_id: str, error: str, seconds: float) -> None:
        self._db.execute(
            "UPDATE runs SET status='failed', error=?, finished=?, seconds=?, lease_expires=NULL WHERE id=?",
            (error, time.time(), seconds, run_id),
        )

    def records(self, experiment: str | None = None) -> list[dict]:
        """Runs (of one experiment, in its order; else all, oldest first), config and metrics decoded, each
        with ``experiments``: the names of the experiments it belongs to."""
        if experiment is not None:
            rows = self._db.execute(
                "SELECT runs.* FROM runs JOIN members ON members.run_id = runs.id "
                "WHERE members.experiment = ? ORDER BY members.position",
                (experiment,),
            ).fetchall()
        else:
            rows = self._db.execute("SELECT * FROM runs ORDER BY created, rowid").fetchall()
        return [self._decode(r) for r in rows]

    def experiments(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT name FROM experiments ORDER BY updated")]

    def definition(self, experiment: str) -> str | None:
        row = self._db.execute("SELECT definition FROM experiments WHERE name = ?", (experiment,)).fetchone()
        return row[0] if row else None

    def get(self, run_id: str) -> dict | None:
        """The run whose id starts with ``run_id`` (None if none).

        Raises:
            AelabError: the prefix matches several runs.
        """
        rows = self._db.execute("SELECT * FROM runs WHERE id LIKE ?", (run_id + "%",)).fetchall()
        if len(rows) > 1:
            raise AelabError(f"run id {run_id!r} is ambiguous: {', '.join(r['id'] for r in rows)}")
        return self._decode(rows[0]) if rows else None

    def _decode(self, row: sqlite3.Row) -> dict:
        out = dict(row)
        out["config"] = json.loads(out["config"])
        out["metrics"] = json.loads(out["metrics"]) if out["metrics"] else None
        out["experiments"] = [
            r[0]
            for r in self._db.execute(
                "SELECT experiment FROM members WHERE run_id = ? ORDER BY experiment", (out["id"],)
            )
        ]
        return out
