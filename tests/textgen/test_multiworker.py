"""Two trainer processes on 127.0.0.1 train one model with MultiWorkerMirroredStrategy (`TF_CONFIG`).

The workers run `multiworker_training.py`; this test checks that both took part (each fed its own half of
every global batch, each ran every step, two replicas in sync), that their weights agree after every
step (and match one device trained on the whole batches), and that the chief's bundle loads. Both
workers are started once for the whole module (TensorFlow's start-up is most of the time).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

# Every test reads one run of two TensorFlow worker processes (seconds).
pytestmark = pytest.mark.slow

WORKER_SCRIPT = Path(__file__).with_name("multiworker_training.py")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
STEPS = 3
# Generous on a loaded two-core machine; a healthy run takes a fraction of it. A hung collective (one
# worker waiting for the other forever) must fail the test rather than stall CI.
TIMEOUT_SECONDS = 90


def _free_ports(count: int) -> list[int]:
    """Ports free on loopback now; held open together so that the two differ."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _weights(path: Path) -> list[np.ndarray]:
    with np.load(path) as data:
        return [data[f"arr_{index}"] for index in range(len(data.files))]


def _max_diff(first: list[np.ndarray], second: list[np.ndarray]) -> float:
    assert len(first) == len(second)
    return max(float(np.abs(a - b).max()) for a, b in zip(first, second, strict=True))


@dataclass
class ClusterRun:
    """What the two workers left: their output folder, exit codes and logs."""

    out: Path
    returncodes: list[int | None]
    logs: list[str]

    def report(self, name: str, index: int) -> dict:
        """`name<index>.json` written by a worker; fails with the worker's log when it is missing."""
        path = self.out / f"{name}{index}.json"
        assert path.is_file(), (
            f"worker {index} did not write {path.name} (exit code {self.returncodes[index]}):\n"
            + self.logs[index][-3000:]
        )
        return json.loads(path.read_text())

    def reports(self, name: str) -> list[dict]:
        return [self.report(name, index) for index in range(2)]


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory: pytest.TempPathFactory) -> ClusterRun:
    """Run both workers once; the tests below read what they wrote."""
    out = tmp_path_factory.mktemp("multiworker")
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = []
    for index in range(2):
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
            "TF_CPP_MIN_LOG_LEVEL": "3",
            # One intra-op thread each: two workers share a small machine.
            "TF_NUM_INTRAOP_THREADS": "1",
            "TF_NUM_INTEROP_THREADS": "2",
        }
        log = out / f"worker{index}.log"
        handle = log.open("w")
        processes.append(
            subprocess.Popen(
                [sys.executable, str(WORKER_SCRIPT), str(out)],
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT,
            )
        )
        handle.close()
    deadline = time.monotonic() + TIMEOUT_SECONDS
    try:
        for process in processes:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    logs = [(out / f"worker{index}.log").read_text(errors="replace") for index in range(2)]
    return ClusterRun(out, [process.returncode for process in processes], logs)


def test_both_workers_took_part(cluster_run: ClusterRun) -> None:
    """Each worker picked MultiWorkerMirroredStrategy itself, ran every step and fed its own half."""
    reports, logs = cluster_run.reports("worker"), cluster_run.logs
    for index, report in enumerate(reports):
        assert report["task_index"] == index
        assert report["multi_worker"], "pick_strategy did not pick MultiWorkerMirroredStrategy"
        assert report["num_replicas_in_sync"] == 2
        assert [step["step"] for step in report["steps"]] == list(range(1, STEPS + 1))
        assert f"worker {index}: step {STEPS} loss" in logs[index]
        # Tokens summed over the replicas: the whole global batch (8 windows of 16) every step.
        assert all(step["tokens"] == 8 * 16 for step in report["steps"])
    assert [report["is_chief"] for report in reports] == [True, False]
    # The losses are reduced across workers, so both see the same figures.
    for first, second in zip(reports[0]["steps"], reports[1]["steps"], strict=True):
        assert first["loss"] == pytest.approx(second["loss"], rel=1e-6)
    # Each worker fed 4 of each global batch's 8 windows, different ones, and together all of them.
    zero, one = reports[0]["local_batches"], reports[1]["local_batches"]
    assert len(zero) == len(one) == STEPS
    for (sum0, rows0), (sum1, rows1), (total, rows) in zip(
        zero, one, reports[0]["global_batches"], strict=True
    ):
        assert rows0 == rows1 == rows // 2
        assert sum0 + sum1 == total
        assert sum0 != sum1


def test_weights_agree_after_every_step(cluster_run: ClusterRun) -> None:
    """Both workers hold the same weights after each step, and they equal one device on whole batches."""
    cluster_run.reports("worker")
    out = cluster_run.out
    initial = _weights(out / "worker0-step0.npz")
    assert _max_diff(initial, _weights(out / "worker1-step0.npz")) == 0.0
    for step in range(1, STEPS + 1):
        zero = _weights(out / f"worker0-step{step}.npz")
        one = _weights(out / f"worker1-step{step}.npz")
        assert _max_diff(zero, one) < 1e-6, f"workers disagree after step {step}"
        assert _max_diff(zero, _weights(out / f"reference-step{step}.npz")) < 1e-4, (
            f"two workers differ from one device on the same global batch after step {step}"
        )
    assert _max_diff(initial, _weights(out / f"worker0-step{STEPS}.npz")) > 1e-3, "training did not move"


def test_train_model_runs_on_both_workers_and_the_chief_bundle_loads(cluster_run: ClusterRun) -> None:
    """`train_model` under the picked strategy: both workers train every step; only the chief saves."""
    from textgen.bundle import load_bundle
    from textgen.spec import ModelSpec

    out, reports = cluster_run.out, cluster_run.reports("worker")
    for report in reports:
        summary = report["train_model"]
        # tf.distribute.MultiWorkerMirroredStrategy's class name.
        assert summary["strategy"] == "CollectiveAllReduceStrategy"
        assert summary["replicas"] == 2
        assert summary["steps"] == 4
        assert summary["progress_steps"] == [1, 2, 1, 2]
        assert summary["carry_state"] is False
    assert reports[0]["train_model"]["val_loss"] == pytest.approx(reports[1]["train_model"]["val_loss"])
    bundle = load_bundle(reports[0]["train_model"]["bundle"])
    assert bundle.path == out / "bundle"
    assert bundle.spec == ModelSpec(arch="lstm", units=16, embedding=8, seq_len=16)
    assert bundle.metrics["replicas"] == 2
    # The non-chief wrote nothing beside the chief's bundles (no second bundle, no leftover staging).
    assert {path.name for path in out.iterdir() if path.is_dir()} <= {"bundle", "budget-bundle"}


def test_time_budget_is_the_same_on_every_worker(cluster_run: ClusterRun) -> None:
    """Under a time budget both workers stop at the same step with the same schedule (learning rates).

    Each worker reads its own clock, and worker 1 starts later; unless `_fit` agrees on the elapsed time
    across workers, their learning rates differ (the mirrored weights drift apart) and one worker stops
    alone while the other waits in a collective (or fails when its peer has gone).
    """
    for index in range(2):
        assert cluster_run.returncodes[index] == 0, (
            f"worker {index} exited with {cluster_run.returncodes[index]}:\n"
            + cluster_run.logs[index][-3000:]
        )
    zero, one = cluster_run.reports("budget")
    assert zero["stopped"] == one["stopped"] == "time budget"
    assert zero["steps"] == one["steps"] > 0
    # The schedule's progress sets the learning rate; float32-agreed values must match exactly.
    assert zero["fractions"] == one["fractions"]
