"""Training on several ranks: torch's elastic agent in a launcher process started by the training
run (rewardtrain.core.launch), each rank running rewardtrain.core.rank with gloo on this CPU, on a
tiny random Llama."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
from safetensors.torch import load_file

from rewardtrain.core.config import TrainConfig
from rewardtrain.core.distributed import Ranks, my_share
from rewardtrain.core.failures import failure_text
from rewardtrain.core.launch import (
    LaunchError,
    Rendezvous,
    rendezvous_from_env,
    resolve_nproc,
    train_and_save,
)
from rewardtrain.models import TrainingRun
from rewardtrain.selectors import runs as selectors
from rewardtrain.services import run_cancel, run_create, run_execute
from tests.rewardtrain.judged import add_judged_pairs, use_tiny_backbone
from tests.rewardtrain.tiny import make_llama

ROOT = Path(__file__).resolve().parents[2]
# Long enough that a rank can be killed or the run cancelled while it trains.
MANY_EPOCHS = {"epochs": 400, "early_stopping_patience": 1000}


def test_each_rank_takes_a_disjoint_share_that_covers_the_batch():
    batch = list(range(7))
    shares = [my_share(batch, Ranks(rank=r, world_size=3)) for r in range(3)]
    assert shares == [[0, 1, 2], [3, 4], [5, 6]]
    assert my_share([9], Ranks(rank=1, world_size=2)) == []


def test_nproc_defaults_and_too_many_gpus_is_a_clear_error():
    assert resolve_nproc(0, "cpu") == 1
    assert resolve_nproc(2, "cpu") == 2
    assert resolve_nproc(0, "cuda", visible_gpus=8) == 8
    with pytest.raises(LaunchError, match=r"nproc=4 asks for more ranks than the 2 visible GPU"):
        resolve_nproc(4, "cuda", visible_gpus=2)
    with pytest.raises(LaunchError, match="names one GPU"):
        resolve_nproc(2, "cuda:1", visible_gpus=2)


def test_multi_node_settings_come_from_the_environment():
    env = {
        "TRAINING_NNODES": "2",
        "TRAINING_NODE_RANK": "1",
        "TRAINING_MASTER_ADDR": "10.0.0.1",
        "TRAINING_MASTER_PORT": "29400",
    }
    rdzv = rendezvous_from_env(env)
    assert rdzv == Rendezvous(nnodes=2, node_rank=1, master_addr="10.0.0.1", master_port=29400)
    assert rdzv.torchrun_args() == [
        "--nnodes=2",
        "--node-rank=1",
        "--master-addr=10.0.0.1",
        "--master-port=29400",
    ]
    with pytest.raises(LaunchError, match="TRAINING_NODE_RANK must be in 0..1"):
        rendezvous_from_env({**env, "TRAINING_NODE_RANK": "2"})


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return str(make_llama(tmp_path_factory.mktemp("llama")))


@pytest.fixture
def llama_project(project, labeler, llama):
    use_tiny_backbone(project, llama, device="cpu", bf16=False, learning_rate=1e-3, epochs=1)
    add_judged_pairs(project, labeler, 40)
    return project


def _descendants() -> dict[int, str]:
    """{pid: RANK or ""} of this process's live descendants (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = {}, {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier}
        for pid in frontier:
            try:
                environ = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            rank = [e[5:].decode() for e in environ if e.startswith(b"RANK=")]
            found[pid] = rank[0] if rank else ""
    return found


def _rank_processes() -> dict[int, str]:
    return {pid: rank for pid, rank in _descendants().items() if _is_training(pid)}


def _is_training(pid: int) -> bool:
    try:
        cmdline = (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False
    state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z" and (
        b"rewardtrain.core.rank" in cmdline or b"rewardtrain.core.launch" in cmdline
    )


def _wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _max_difference(folder_a, folder_b) -> float:
    a = load_file(Path(folder_a) / "model.safetensors")
    b = load_file(Path(folder_b) / "model.safetensors")
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


@pytest.mark.slow
def test_fsdp_with_lora_matches_one_process(llama, settings, tmp_path):
    from tests.rewardtrain.test_training import keyword_rows

    rows = keyword_rows(30, seed=1)
    base = dict(
        backbone=llama,
        epochs=2,
        learning_rate=1e-3,
        warmup_ratio=0.0,
        device="cpu",
        bf16=False,
        lora_r=4,
    )
    one = train_and_save(rows[:26], rows[26:], TrainConfig(**base, batch_size=4), tmp_path / "one")
    two = train_and_save(
        rows[:26],
        rows[26:],
        TrainConfig(**base, batch_size=2, sharding="fsdp"),
        tmp_path / "fsdp",
        nproc=2,
    )
    assert two["world_size"] == 2 and two["lora_r"] == 4
    assert two["trainable_params"] == one["trainable_params"]
    assert two["best_val_loss"] == pytest.approx(one["best_val_loss"], abs=1e-5)
    assert _max_difference(tmp_path / "one", tmp_path / "fsdp") <= 1e-5
    assert (tmp_path / "fsdp" / "adapter" / "adapter_config.json").exists()


@pytest.mark.slow
def test_the_launcher_writes_the_failures_torch_reports(tmp_path):
    """Rank 0 cannot read its job: it raises and torch records it (@record); rank 1, waiting
    for the job, fails or is stopped; the launcher writes both, and rank 0's error is the cause."""
    launch = {"nproc": 2, "device": "cpu", "rendezvous": asdict(Rendezvous())}
    (tmp_path / "launch.json").write_text(json.dumps(launch))
    launcher = subprocess.run(
        [sys.executable, "-m", "rewardtrain.core.launch", f"--job={tmp_path}"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=120,
    )
    assert launcher.returncode == 1, launcher.stderr.decode()[-2000:]
    failures = json.loads((tmp_path / "failures.json").read_text())
    assert sorted(f["rank"] for f in failures) == [0, 1]
    assert failure_text(failures) == (
        f"rank 0 failed: FileNotFoundError: [Errno 2] No such file or directory: "
        f"'{tmp_path / 'job.json'}'"
    )
    assert b"FileNotFoundError" in launcher.stderr  # torch's summary, for a reader of the log
    assert not _rank_processes()


def _two_ranks(project, **config) -> None:
    use_tiny_backbone(
        project, project.reward_backbone, device="cpu", bf16=False, nproc=2, batch_size=2, **config
    )


@pytest.mark.slow
def test_a_killed_rank_fails_the_run_and_the_next_run_on_two_ranks_reaches_one_ranks_weights(
    llama_project, settings
):
    """Two launches: a run whose rank 1 is killed, then the next run, which must work, and
    whose weights must be those of one process with the same global batch."""
    _two_ranks(llama_project, **MANY_EPOCHS)
    run, _ = run_create(project=llama_project, trigger="command")
    killed = {}

    def kill_rank_one(progress):
        if killed:
            return
        ranks = {rank: pid for pid, rank in _rank_processes().items() if rank}
        os.kill(ranks["1"], signal.SIGKILL)
        killed["at"] = time.monotonic()

    run = run_execute(run_id=run.pk, on_progress=kill_rank_one)
    assert run.status == TrainingRun.Status.FAILED
    assert time.monotonic() - killed["at"] < 60
    assert "rank" in run.error and ("SIGKILL" in run.error or "-9" in run.error), run.error
    project_dir = Path(settings.MODELS_DIR) / llama_project.slug
    assert not list(project_dir.iterdir())
    assert _wait_until(lambda: not _rank_processes(), 10)

    _two_ranks(llama_project, epochs=1)
    run, _ = run_create(project=llama_project, trigger="command")
    run = run_execute(run_id=run.pk)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.world_size == 2 and run.lora_r is None
    assert run.trainable_params == run.total_params > 0 and run.tokens_per_s > 0
    folder = Path(run.model_version.path)
    meta = json.loads((folder / "prefloop.json").read_text())
    assert meta["metrics"]["world_size"] == 2
    assert meta["metrics"]["trainable_params"] == run.trainable_params

    # One process, the same rows, batch 4 = 2 per rank x 2 ranks.
    data = selectors.training_data(project=llama_project)
    cfg = TrainConfig.from_dict({**run.config, "nproc": 1, "batch_size": 4})
    one = Path(settings.MODELS_DIR) / "one-rank"
    figures = train_and_save(data.train, data.validation, cfg, one)
    assert figures["steps"] == meta["metrics"]["steps"] > 1
    assert _max_difference(folder, one) <= 1e-5
    assert not _rank_processes()


@pytest.mark.slow
def test_cancelling_reaches_every_rank(llama_project, settings):
    _two_ranks(llama_project, **MANY_EPOCHS)
    run, _ = run_create(project=llama_project, trigger="command")
    run = run_execute(run_id=run.pk, on_progress=lambda p: run_cancel(run=run))
    assert run.status == TrainingRun.Status.CANCELLED, run.error
    assert run.progress["step"] < run.progress["total"]
    assert not list((Path(settings.MODELS_DIR) / llama_project.slug).iterdir())
    assert _wait_until(lambda: not _rank_processes(), 10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_of_one_rank_each_meet_on_loopback(llama_project, settings):
    port = _free_port()
    settings.TRAINING_NNODES, settings.TRAINING_NODE_RANK = 2, 0
    settings.TRAINING_MASTER_ADDR, settings.TRAINING_MASTER_PORT = "127.0.0.1", port
    settings.TRAINING_NPROC = 1
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TRAINING_NNODES": "2",
        "TRAINING_NODE_RANK": "1",
        "TRAINING_MASTER_ADDR": "127.0.0.1",
        "TRAINING_MASTER_PORT": str(port),
        "TRAINING_NPROC": "1",
        "TRAINING_DEVICE": "cpu",
    }
    follower = subprocess.Popen(
        [sys.executable, "-m", "rewardtrain.core.launch"],
        env=env,
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        run, _ = run_create(project=llama_project, trigger="command")
        run = run_execute(run_id=run.pk)
        assert run.status == TrainingRun.Status.SUCCEEDED, run.error
        assert run.world_size == 2
        assert follower.wait(timeout=60) == 0
    finally:
        if follower.poll() is None:
            os.killpg(follower.pid, signal.SIGKILL)
            follower.wait()
