"""The store belongs to the driver: leases taken in one transaction, renewed by the driver's heartbeat, taken
over on any host once they expire; workers train without opening SQLite."""

import os
import time

import pytest

from aelab.config import RunConfig
from aelab.experiments.engine import RunsFolderNotVisible, work
from aelab.experiments.executors import Driver
from aelab.experiments.folders import store_path
from aelab.experiments.resolve import ResolvedRun
from aelab.experiments.store import RunStore

CONFIG = RunConfig.model_validate(
    {
        "data": {"name": "digits"},
        "model": {"spec": {"type": "mlp", "hidden": [], "code_size": 4}},
        "training": {"epochs": 1},
    }
)


def one_run(root, run_id="r1") -> ResolvedRun:
    run = ResolvedRun(id=run_id, name="mlp", config=CONFIG)
    with RunStore(store_path(root)) as store:
        store.add_experiment("e", "{}", [run], [f"mlp-{run_id}"])
    return run


def row(root, run_id="r1") -> dict:
    with RunStore(store_path(root)) as store:
        return dict(store._db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())


def move_to_another_host(root, run_id="r1", expires=None) -> None:
    """Make the claim look as if a driver on another machine held it (its pid means nothing here)."""
    with RunStore(store_path(root)) as store:
        store._db.execute(
            "UPDATE runs SET host='node-7', pid=1, lease_expires=COALESCE(?, lease_expires) WHERE id=?",
            (expires, run_id),
        )


def test_a_lease_is_held_until_it_expires_then_taken_over_on_any_host(tmp_path):
    one_run(tmp_path)
    with RunStore(store_path(tmp_path)) as store:
        assert store.claim("r1", "driver-a", ttl=60)
        assert not store.claim("r1", "driver-b", ttl=60)  # held: driver-a's lease runs for another minute
    move_to_another_host(tmp_path)
    with RunStore(store_path(tmp_path)) as store:
        assert not store.claim("r1", "driver-b", ttl=60)  # a live lease on another host is respected too
    move_to_another_host(tmp_path, expires=time.time() - 1)
    with RunStore(store_path(tmp_path)) as store:
        assert store.claim("r1", "driver-b", ttl=60)  # expired: taken over although its host is not this one
        assert store.renew("driver-a", 60) == 0  # the old owner holds nothing any more
        assert store.renew("driver-b", 60) == 1
    r = row(tmp_path)
    assert (r["status"], r["lease_owner"], r["attempts"]) == ("running", "driver-b", 2)
    assert time.time() + 50 < r["lease_expires"] <= time.time() + 60


def test_finished_runs_are_never_claimed_and_failed_ones_only_with_retry(tmp_path):
    one_run(tmp_path)
    with RunStore(store_path(tmp_path)) as store:
        assert store.claim("r1", "a", ttl=60)
        store.fail("r1", "boom", 1.0)
        assert not store.claim("r1", "b", ttl=60)
        assert store.claim("r1", "b", ttl=60, retry_failed=True)
        store.finish("r1", {"test_mse": 0.5}, 2.0)
        assert not store.claim("r1", "c", ttl=60, retry_failed=True)
    r = row(tmp_path)
    assert (r["status"], r["lease_expires"], r["attempts"]) == ("done", None, 2)


def test_the_driver_heartbeat_renews_its_leases_and_stops_with_it(tmp_path, monkeypatch):
    monkeypatch.setenv("AELAB_LEASE_SECONDS", "0.6")  # renewed every 0.2 s
    run = one_run(tmp_path)
    with Driver(tmp_path, retry_failed=False, log=lambda m: None) as driver:
        assert [r.id for r, _ in driver.claim([run])] == ["r1"]
        first = row(tmp_path)["lease_expires"]
        time.sleep(1.0)  # longer than the lease: only the heartbeat keeps it
        renewed = row(tmp_path)["lease_expires"]
        assert renewed > first and renewed > time.time()
        move_to_another_host(tmp_path)  # a second driver elsewhere must still wait
        with RunStore(store_path(tmp_path)) as store:
            assert not store.claim("r1", "other", ttl=60)
    time.sleep(0.8)  # the driver is gone: no heartbeat, the lease runs out
    with RunStore(store_path(tmp_path)) as store:
        assert store.claim("r1", "other", ttl=60)


def test_a_worker_trains_into_its_folder_without_opening_the_store(tmp_path, monkeypatch):
    def no_store(*args, **kwargs):
        raise AssertionError("a worker opened the run store")

    monkeypatch.setattr(RunStore, "__init__", no_store)
    (tmp_path / "runs").mkdir()
    result = work(str(tmp_path / "runs"), "mlp-r1", CONFIG.model_dump(mode="json"), analyses=False)
    assert result["status"] == "done" and result["node"] == os.uname().nodename
    assert result["metrics"]["test_mse"] > 0
    assert (tmp_path / "runs" / "mlp-r1" / "model" / "model.safetensors").is_file()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["mlp-r1"]  # no aelab.sqlite


def test_a_worker_that_cannot_see_the_runs_folder_says_so(tmp_path):
    missing = str(tmp_path / "not-mounted")
    with pytest.raises(RunsFolderNotVisible, match=f"the runs folder '{missing}' does not exist on node"):
        work(missing, "mlp-r1", CONFIG.model_dump(mode="json"))
