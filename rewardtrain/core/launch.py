"""Training in several processes: torchrun (torch.distributed.run) starts the ranks, each runs
rewardtrain.core.rank, and this process follows them through files in a job folder.

    job.json       the rows, config and output folder (read by global rank 0, sent to all)
    progress.jsonl one line per step from rank 0, replayed here into on_step
    cancel         written here when should_stop() says so; rank 0 tells every rank
    result.json    rank 0's training figures, once the model folder is written
    error-<rank>   a rank's traceback; pid-<rank> its process id (for the clean-up)

One process on one machine trains in this process (train_and_save), with no torchrun.
On another machine of a multi-node run, `python -m rewardtrain.core.launch` joins as node
TRAINING_NODE_RANK and takes its job from rank 0.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewardtrain.core.config import ConfigError, TrainConfig, check_nproc

if TYPE_CHECKING:
    from rewardtrain.core.training import Progress

# How often the job folder is read while the ranks train.
POLL_SECONDS = 0.2
# torchrun checks its workers this often; a dead rank is noticed within it.
MONITOR_SECONDS = 0.5
# After a stop request, torchrun gets this long to end its workers before they are killed.
STOP_GRACE_SECONDS = 20


class LaunchError(Exception):
    """The ranks cannot be started as asked (nproc, GPUs), or one of them failed."""


@dataclass(frozen=True)
class Rendezvous:
    """Where the nodes of a multi-node run meet: torchrun's static rendezvous. Node 0 holds
    global rank 0 and is the one that runs the TrainingRun."""

    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500

    def torchrun_args(self) -> list[str]:
        if self.nnodes == 1:
            # A free port of its own: runs side by side on one machine never collide.
            return ["--standalone"]
        return [
            f"--nnodes={self.nnodes}",
            f"--node-rank={self.node_rank}",
            f"--master-addr={self.master_addr}",
            f"--master-port={self.master_port}",
        ]


def rendezvous_from_env(env: dict[str, str] | None = None) -> Rendezvous:
    """TRAINING_NNODES, TRAINING_NODE_RANK, TRAINING_MASTER_ADDR, TRAINING_MASTER_PORT."""
    env = os.environ if env is None else env
    try:
        rdzv = Rendezvous(
            nnodes=int(env.get("TRAINING_NNODES", "1")),
            node_rank=int(env.get("TRAINING_NODE_RANK", "0")),
            master_addr=env.get("TRAINING_MASTER_ADDR", "127.0.0.1"),
            master_port=int(env.get("TRAINING_MASTER_PORT", "29500")),
        )
    except ValueError as exc:
        raise LaunchError(
            f"TRAINING_NNODES, _NODE_RANK and _MASTER_PORT are numbers: {exc}"
        ) from exc
    if rdzv.nnodes < 1 or not 0 <= rdzv.node_rank < rdzv.nnodes:
        raise LaunchError(
            f"TRAINING_NODE_RANK must be in 0..{rdzv.nnodes - 1}, not {rdzv.node_rank}"
        )
    return rdzv


def resolve_nproc(requested: int, device: str, visible_gpus: int | None = None) -> int:
    """Ranks on this machine: `requested`, else one per visible GPU on CUDA, else 1.
    Raises LaunchError where config.check_nproc refuses (more ranks than visible GPUs)."""
    if not device.startswith("cuda"):
        return requested or 1
    if visible_gpus is None:
        import torch

        visible_gpus = torch.cuda.device_count()
    try:
        check_nproc(requested, device, visible_gpus)
    except ConfigError as exc:
        raise LaunchError(
            f"{exc} (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})"
        ) from exc
    return 1 if ":" in device else requested or visible_gpus


def train_and_save(
    train_rows: list[dict],
    validation_rows: list[dict],
    cfg: TrainConfig,
    folder: str | os.PathLike,
    *,
    nproc: int = 1,
    rendezvous: Rendezvous = Rendezvous(),
    init_from: str | None = None,
    on_step: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    metrics: dict | None = None,
    extra: dict | None = None,
) -> dict[str, Any]:
    """Train and write the model folder; returns the training figures (training_figures()
    plus `metrics`), which prefloop.json records too. One rank: in this process. More:
    torchrun, with rank 0 writing the folder. Raises what train() raises, LaunchError when a
    rank fails (the others are ended first)."""
    # Imported here: a joining node (`python -m rewardtrain.core.launch`) only starts torchrun, and
    # torch with transformers takes seconds to import that its ranks spend again.
    from rewardtrain.core.training import save_model, train, training_figures

    if nproc == 1 and rendezvous.nnodes == 1:
        result = train(
            train_rows,
            validation_rows,
            cfg,
            on_step=on_step,
            should_stop=should_stop,
            init_from=init_from,
        )
        figures = {**training_figures(result), **(metrics or {})}
        save_model(result, folder, metrics=figures, extra=extra)
        return figures
    job = {
        "train": train_rows,
        "validation": validation_rows,
        "config": cfg.to_dict(),
        "init_from": init_from,
        "output": str(folder),
        "metrics": metrics or {},
        "extra": extra or {},
    }
    return _run_ranks(job, cfg.device, nproc, rendezvous, on_step, should_stop)


def _torchrun(nproc: int, rendezvous: Rendezvous, device: str, job_dir: Path | None) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc-per-node={nproc}",
        "--max-restarts=0",
        f"--monitor-interval={MONITOR_SECONDS}",
        *rendezvous.torchrun_args(),
        "-m",
        "rewardtrain.core.rank",
        f"--device={device}",
    ]
    return [*command, f"--job={job_dir}"] if job_dir else command


def _rank_env() -> dict[str, str]:
    """This process's environment, with the folder holding this rewardtrain package first on
    the ranks' path: they run the same code as the run that started them."""
    here = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH", "")
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([here, path]) if path else here,
        "PYTHONUNBUFFERED": "1",
    }


def _run_ranks(job, device, nproc, rendezvous, on_step, should_stop) -> dict[str, Any]:
    job_dir = Path(tempfile.mkdtemp(prefix="prefloop-ranks-"))
    try:
        (job_dir / "job.json").write_text(json.dumps(job, default=str))
        log_path = job_dir / "torchrun.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                _torchrun(nproc, rendezvous, device, job_dir),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=_rank_env(),
            )
            try:
                _follow(proc, job_dir, on_step, should_stop)
            finally:
                _end(proc, job_dir)
        result_path = job_dir / "result.json"
        result = json.loads(result_path.read_text()) if result_path.exists() else None
        if proc.returncode != 0 or result is None:
            raise LaunchError(_failure(job_dir, proc.returncode))
        if result.get("cancelled"):
            from rewardtrain.core.training import TrainingCancelled

            raise TrainingCancelled(result["cancelled"])
        return result["figures"]
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)


def _follow(proc, job_dir: Path, on_step, should_stop) -> None:
    """Replay rank 0's progress and pass a stop request on, until torchrun exits."""
    from rewardtrain.core.training import Progress

    offset = 0
    progress = job_dir / "progress.jsonl"
    while True:
        done = proc.poll() is not None
        if progress.exists():
            with open(progress) as f:
                f.seek(offset)
                chunk = f.read()
            complete = chunk[: chunk.rfind("\n") + 1]
            offset += len(complete)
            for line in complete.splitlines():
                if on_step is not None:
                    on_step(Progress(**json.loads(line)))
        if done:
            return
        if should_stop is not None and should_stop():
            (job_dir / "cancel").touch()
        time.sleep(POLL_SECONDS)


def _end(proc: subprocess.Popen, job_dir: Path) -> None:
    """No process of the job outlives it: torchrun ends its workers on SIGTERM; a worker that
    survives that (or whose torchrun was killed) is killed by the pid it wrote."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pid_file in job_dir.glob("pid-*"):
        pid = int(pid_file.read_text() or 0)
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                mine = str(job_dir).encode() in f.read()
        except OSError:
            continue  # already gone
        if mine:  # the pid was not reused by another process
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _failure(job_dir: Path, returncode: int | None) -> str:
    """The rank that failed first (torchrun's root cause), with its own error when it wrote
    one, else how it ended (a signal, an exit code). The other ranks' errors follow from it."""
    log = (job_dir / "torchrun.log").read_text(errors="replace")
    facts: dict[str, str] = {}
    if "Root Cause (first observed failure):" in log:
        # torchrun's summary: a block per failed rank, the root cause's last.
        summary = log[log.rfind("Failures:") :]
        blocks = [_block_facts(b) for b in re.split(r"^\s*\[\d+\]:\s*$", summary, flags=re.M)]
        blocks = [b for b in blocks[1:] if b]
        # A rank killed by a signal (SIGKILL, the OOM killer) is the cause of its peers'
        # "Connection reset by peer", even when one of those was observed first. SIGTERM is
        # torchrun stopping the survivors: never the cause. The root cause first, if killed.
        killed = [b for b in blocks if _killed(b)]
        facts = killed[-1] if killed else blocks[-1] if blocks else {}
    rank = facts.get("rank", "").split(" ")[0]
    own = job_dir / f"error-{rank}"
    if rank and own.exists():
        lines = own.read_text().strip().splitlines()
        return f"rank {rank} failed: {lines[-1] if lines else 'no message'}"
    if facts:
        return f"rank {facts.get('rank', '?')} failed: exit code " + "; ".join(
            facts[k] for k in ("exitcode", "traceback") if k in facts
        )
    errors = sorted(job_dir.glob("error-*"))
    if errors:
        lines = errors[0].read_text().strip().splitlines()
        return f"{errors[0].name.replace('error-', 'rank ')} failed: {lines[-1] if lines else ''}"
    tail = " | ".join(log.strip().splitlines()[-5:])
    return f"the ranks ended with exit code {returncode}: {tail[-1500:]}"


def _killed(facts: dict[str, str]) -> bool:
    code = facts.get("exitcode", "")
    return code.startswith("-") and "SIGTERM" not in code


def _block_facts(block: str) -> dict[str, str]:
    facts: dict[str, str] = {}
    for line in block.splitlines():
        key, _, value = line.strip().partition(":")
        if key.strip() in ("rank", "exitcode", "traceback") and key.strip() not in facts:
            facts[key.strip()] = " ".join(value.split())
    return facts


def progress_line(progress: Progress) -> str:
    """One line of progress.jsonl (rank 0 writes it, _follow reads it)."""
    return json.dumps(asdict(progress)) + "\n"


def follow(device: str, nproc: int, rendezvous: Rendezvous) -> int:
    """Join a multi-node run as node rendezvous.node_rank (not 0): torchrun with this machine's
    ranks, which take rows and config from rank 0. Returns torchrun's exit code."""
    if rendezvous.node_rank == 0:
        raise LaunchError("node 0 is the one that runs the training run; join as node 1 or more")
    proc = subprocess.Popen(
        _torchrun(nproc, rendezvous, device, None), start_new_session=True, env=_rank_env()
    )
    try:
        return proc.wait()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=STOP_GRACE_SECONDS)


def main() -> None:
    import torch

    device = os.environ.get("TRAINING_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    nproc = resolve_nproc(int(os.environ.get("TRAINING_NPROC", "0")), device)
    sys.exit(follow(device, nproc, rendezvous_from_env()))


if __name__ == "__main__":
    main()
