"""One experiment on several processes of this machine (``--nproc-per-node N``): what every process would refuse
is refused here first (one line, exit code 2, nothing written); then ``torch.distributed.run`` starts N
processes of ``aelab run`` on the same experiment (rank 0 records and writes, the others train with it, see
:mod:`aelab.training.distributed`)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from aelab.config import ExperimentConfig, dump_yaml
from aelab.errors import AelabError, ConfigError
from aelab.experiments.folders import ExperimentFolder
from aelab.experiments.resolve import ResolvedRun


def check_processes(executor: str, runs: list[ResolvedRun], size: int) -> None:
    """Refuse what several processes cannot run.

    Raises:
        ConfigError: an executor other than inline, or a run's batch the processes cannot share equally.
    """
    from aelab.training.distributed import check_batch_size

    if executor != "inline":
        raise ConfigError(
            f"--executor: got {executor!r} with {size} processes per run; allowed: inline (every process trains "
            "each run)"
        )
    for run in runs:
        check_batch_size(run.config.training.batch_size, size)


def join(executor: str, runs: list[ResolvedRun]) -> int:
    """Join the process group when ``torchrun`` started this process; this process's rank (0 without one).

    Raises:
        ConfigError: several processes with another executor than inline, or a batch they cannot share.
    """
    from aelab.training.distributed import join_from_environment, launched_size

    if launched_size() <= 1:
        return 0
    check_processes(executor, runs, launched_size())
    return join_from_environment()[0]


def leave_together() -> None:
    """In a process group started by ``torchrun``: wait for every process, then leave the group (see
    :func:`aelab.training.distributed.finish`); nothing otherwise."""
    if "torch.distributed" in sys.modules:  # no process group without it; spares the torch import
        from aelab.training.distributed import finish

        finish()


def command(experiment_file: Path, overrides: dict[str, Any], runs_dir: Path, size: int, flags: dict) -> list[str]:
    """The ``torch.distributed.run`` command line of ``aelab run`` on ``experiment_file``: one node, its
    processes meeting on a free port of the loopback address."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", f"--nproc-per-node={size}"]
    cmd += ["--master-addr=127.0.0.1", f"--master-port={port}"]
    cmd += ["-m", "aelab", "run", str(experiment_file), "--runs-dir", str(runs_dir)]
    for key, value in overrides.items():
        cmd += ["--set", f"{key}={json.dumps(value, default=str)}"]
    for flag, on in flags.items():
        cmd.append(f"--{flag}" if on else f"--no-{flag}")
    return cmd


def launch(
    experiment: ExperimentConfig, overrides: dict[str, Any], name: str, runs_dir: Path, size: int, flags: dict
) -> None:
    """Run ``experiment`` (named ``name``) on ``size`` processes; their output is this process's.

    Raises:
        AelabError: the processes ended before the experiment was written (their output says why).
    """
    with tempfile.TemporaryDirectory(prefix="aelab-launch-") as tmp:
        path = Path(tmp) / f"{name}.yaml"
        path.write_text(dump_yaml(experiment.model_copy(update={"name": name})))
        code = subprocess.run(command(path, overrides, runs_dir, size, flags), check=False).returncode
    if not ExperimentFolder.for_experiment(runs_dir, name).metrics.is_file():
        raise AelabError(
            f"the {size} processes of experiment {name!r} ended (exit code {code}) before writing it; "
            "their output above says why"
        )
