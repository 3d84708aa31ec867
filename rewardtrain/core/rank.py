"""The program each rank runs under torch's elastic agent (rewardtrain.core.launch starts it):
join the process group, take the job from rank 0, train, and on rank 0 write the model folder
and the figures. An exception is recorded by torch's @record into the error file the agent
named (TORCHELASTIC_ERROR_FILE), which the launcher reads back as the rank's failure.

    python -m rewardtrain.core.rank --device cpu --job /tmp/prefloop-ranks-x   (leader node)
    python -m rewardtrain.core.rank --device cuda                              (other nodes)
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import sys
from pathlib import Path

from torch.distributed.elastic.multiprocessing.errors import record

PR_SET_PDEATHSIG = 1


def _die_with_launcher() -> None:
    """Linux: the kernel kills this rank when its launcher dies, even by SIGKILL."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


@record
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="")
    parser.add_argument("--job", help="the job folder (on the node of rank 0)")
    args = parser.parse_args(argv)
    _die_with_launcher()
    job_dir = Path(args.job) if args.job else None
    if job_dir:
        (job_dir / f"pid-{os.environ.get('RANK', '?')}").write_text(str(os.getpid()))
    return _run(args.device, job_dir)


def _run(device: str, job_dir: Path | None) -> int:
    import torch.distributed as dist

    from rewardtrain.core.config import TrainConfig
    from rewardtrain.core.device import resolve_device
    from rewardtrain.core.distributed import broadcast_from_leader, init_from_env
    from rewardtrain.core.launch import progress_line
    from rewardtrain.core.result import save_model, training_figures
    from rewardtrain.core.training import TrainingCancelled, train

    device = resolve_device(device)
    ranks = init_from_env(device)
    try:
        job = None
        if ranks.leader:
            if job_dir is None:
                raise RuntimeError("rank 0 needs --job: start node 0 through the training run")
            job = json.loads((job_dir / "job.json").read_text())
        job = broadcast_from_leader(job, ranks)
        cfg = TrainConfig.from_dict({**job["config"], "device": device})
        progress_path = job_dir / "progress.jsonl" if ranks.leader else None

        def on_step(p) -> None:
            with open(progress_path, "a") as progress:
                progress.write(progress_line(p))

        try:
            result = train(
                job["train"],
                job["validation"],
                cfg,
                on_step=on_step,
                should_stop=lambda: (job_dir / "cancel").exists(),
                init_from=job["init_from"],
                ranks=ranks,
            )
        except TrainingCancelled as exc:
            if ranks.leader:
                (job_dir / "result.json").write_text(json.dumps({"cancelled": str(exc)}))
            return 0
        if ranks.leader:
            figures = {**training_figures(result), **job["metrics"]}
            save_model(result, job["output"], metrics=figures, extra=job["extra"])
            (job_dir / "result.json").write_text(json.dumps({"figures": figures}, default=str))
        return 0
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
