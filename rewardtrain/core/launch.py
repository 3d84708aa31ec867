"""Training in several processes: a launcher process (this module, `--job`) starts the ranks
with torch's elastic agent (torch.distributed.launcher.api.elastic_launch, what torchrun runs),
each runs rewardtrain.core.rank, and the training run follows them through a job folder.

    job.json       the rows, config and output folder (read by global rank 0, sent to all)
    launch.json    the launcher's ranks, device and rendezvous
    progress.jsonl one line per step from rank 0, replayed here into on_step
    cancel         written here when should_stop() says so; rank 0 tells every rank
    result.json    rank 0's training figures, once the model folder is written
    failures.json  the failed ranks as torch reports them (ChildFailedError.failures)
    launch.log     the launcher's and the ranks' output; logs/ torch's per-rank error files
    pid-<rank>     a rank's process id (for the clean-up)

One process on one machine trains in this process (train_and_save), with no launcher.
On another machine of a multi-node run, `python -m rewardtrain.core.launch` joins as node
TRAINING_NODE_RANK and takes its job from rank 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewardtrain.core.config import ConfigError, TrainConfig, check_nproc
from rewardtrain.core.failures import failure_facts, failure_text

if TYPE_CHECKING:
    from torch.distributed.launcher.api import LaunchConfig

    from rewardtrain.core.training import Progress

# How often the job folder is read while the ranks train.
POLL_SECONDS = 0.2
# The elastic agent checks its workers this often; a dead rank is noticed within it.
MONITOR_SECONDS = 0.5
# After a stop request, the launcher gets this long to end its workers before they are killed.
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
        """The same rendezvous as torchrun's options (to start a node by hand)."""
        if self.nnodes == 1:
            return ["--standalone"]
        return [
            f"--nnodes={self.nnodes}",
            f"--node-rank={self.node_rank}",
            f"--master-addr={self.master_addr}",
            f"--master-port={self.master_port}",
        ]

    def launch_config(self, nproc: int, log_dir: str | os.PathLike) -> LaunchConfig:
        """The elastic agent's settings for this node, as torchrun makes them from
        torchrun_args(), --max-restarts=0 and --monitor-interval=MONITOR_SECONDS."""
        from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
        from torch.distributed.launcher.api import LaunchConfig

        if self.nnodes == 1:
            # torchrun --standalone: a store on a free port of its own, so runs side by side
            # on one machine never collide.
            backend, endpoint, run_id, configs = "c10d", "localhost:0", str(uuid.uuid4()), {}
        else:
            backend, endpoint = "static", f"{self.master_addr}:{self.master_port}"
            run_id, configs = "none", {"rank": self.node_rank}
        return LaunchConfig(
            min_nodes=self.nnodes,
            max_nodes=self.nnodes,
            nproc_per_node=nproc,
            run_id=run_id,
            role="default",
            rdzv_backend=backend,
            rdzv_endpoint=endpoint,
            rdzv_configs=configs,
            max_restarts=0,
            monitor_interval=MONITOR_SECONDS,
            logs_specs=DefaultLogsSpecs(log_dir=str(log_dir)),
        )


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
    plus `metrics`), which prefloop.json records too. One rank: in this process. More: the
    launcher's ranks, with rank 0 writing the folder. Raises what train() raises, LaunchError
    when a rank fails (the others are ended first)."""
    # Imported here: a launcher (`python -m rewardtrain.core.launch`) only starts the ranks, and
    # transformers takes seconds to import that its ranks spend again.
    from rewardtrain.core.result import save_model, training_figures
    from rewardtrain.core.training import train

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


def _launcher(job_dir: Path) -> list[str]:
    return [sys.executable, "-m", "rewardtrain.core.launch", f"--job={job_dir}"]


def _rank_env() -> dict[str, str]:
    """This process's environment, with the folder holding this rewardtrain package first on
    the ranks' path: they run the same code as the run that started them."""
    here = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH", "")
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([here, path]) if path else here,
        "PYTHONUNBUFFERED": "1",
    }


def _run_ranks(job, device, nproc, rendezvous, on_step, should_stop) -> dict[str, Any]:
    # The elastic agent runs in a launcher process of its own, not in this one: it takes over
    # SIGTERM and SIGINT (main thread only) and blocks until the ranks end, while this process
    # (a Celery worker, a command) keeps its own signals, replays progress and cancels. Ending
    # the launcher (SIGTERM) ends its ranks, as it did torchrun's.
    job_dir = Path(tempfile.mkdtemp(prefix="prefloop-ranks-"))
    try:
        (job_dir / "job.json").write_text(json.dumps(job, default=str))
        launch = {"nproc": nproc, "device": device, "rendezvous": asdict(rendezvous)}
        (job_dir / "launch.json").write_text(json.dumps(launch))
        with open(job_dir / "launch.log", "wb") as log:
            proc = subprocess.Popen(
                _launcher(job_dir),
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
    """Replay rank 0's progress and pass a stop request on, until the launcher exits."""
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
    """No process of the job outlives it: the launcher ends its workers on SIGTERM; a worker
    that survives that (or whose launcher was killed) is killed by the pid it wrote."""
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
    """Why the job failed: the root cause among the failures the launcher wrote, else (the
    launcher itself failed: rendezvous, a signal) the end of its output."""
    failures_path = job_dir / "failures.json"
    if failures_path.exists():
        failures = json.loads(failures_path.read_text())
        if failures:
            return failure_text(failures)
    log_path = job_dir / "launch.log"
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    tail = " | ".join(log.strip().splitlines()[-5:])
    return f"the ranks ended with exit code {returncode}: {tail[-1500:]}"


def launch_ranks(
    nproc: int, rendezvous: Rendezvous, device: str, job_dir: Path | None, log_dir: Path
) -> list[dict[str, Any]]:
    """Run this node's ranks under torch's elastic agent until they end; returns the failures
    (failure_facts), [] when every rank succeeded. Only in a process of its own (the launcher,
    a joining node): the agent sets this process's environment and signal handlers."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch

    os.environ.update(_rank_env())
    if nproc > 1:
        # As torchrun: ranks sharing a machine do not each take every core.
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    args = ["-u", "-m", "rewardtrain.core.rank", f"--device={device}"]
    if job_dir is not None:
        args.append(f"--job={job_dir}")
    try:
        elastic_launch(rendezvous.launch_config(nproc, log_dir), sys.executable)(*args)
    except ChildFailedError as exc:
        print(exc, file=sys.stderr)  # torch's summary, for whoever reads launch.log
        return failure_facts(exc.failures)
    return []


def _launch_job(job_dir: Path) -> int:
    """The launcher process of a training run: the ranks, then their failures as JSON."""
    launch = json.loads((job_dir / "launch.json").read_text())
    failures = launch_ranks(
        launch["nproc"],
        Rendezvous(**launch["rendezvous"]),
        launch["device"],
        job_dir,
        job_dir / "logs",
    )
    (job_dir / "failures.json").write_text(json.dumps(failures))
    return 1 if failures else 0


def progress_line(progress: Progress) -> str:
    """One line of progress.jsonl (rank 0 writes it, _follow reads it)."""
    return json.dumps(asdict(progress)) + "\n"


def follow(device: str, nproc: int, rendezvous: Rendezvous) -> int:
    """Join a multi-node run as node rendezvous.node_rank (not 0): this machine's ranks, which
    take rows and config from rank 0. Returns 0, or 1 with the failure on stderr."""
    if rendezvous.node_rank == 0:
        raise LaunchError("node 0 is the one that runs the training run; join as node 1 or more")
    with tempfile.TemporaryDirectory(prefix="prefloop-ranks-") as log_dir:
        failures = launch_ranks(nproc, rendezvous, device, None, Path(log_dir))
    if failures:
        print(f"rewardtrain: {failure_text(failures)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Join a multi-node training run as a node.")
    parser.add_argument("--job", help="(a training run's own launcher) its job folder")
    args = parser.parse_args(argv)
    if args.job:
        sys.exit(_launch_job(Path(args.job)))
    import torch

    device = os.environ.get("TRAINING_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    nproc = resolve_nproc(int(os.environ.get("TRAINING_NPROC", "0")), device)
    sys.exit(follow(device, nproc, rendezvous_from_env()))


if __name__ == "__main__":
    main()
