"""A generation job against a naive sequential client: the same prompts, the same real
`transformers serve` (a tiny random chat model from a local config, CPU), one sample each.

    .venv/bin/python bench/generation.py            # 200 prompts, 32 tokens each
    .venv/bin/python bench/generation.py --smoke    # seconds: 24 prompts, 8 tokens

The naive client posts one chat completion, waits for it, posts the next (what a script
looping over prompts does). The job (annotate/services/generation_run.py) keeps
`--concurrency` requests in flight and stores every reply in the database (SQLite in a
temporary folder) with its provenance. Prints responses/s and p99 latency of each, the ratio
against the target (3x at concurrency 8), and the job's lost and doubled responses: a lost one
is a (prompt, sample) with no stored reply; a doubled one a completion the server wrote twice
(completion tokens beyond one reply's max_tokens per sample; the tiny model never stops early).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_RATIO = 3.0


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]


def prompts_of(n: int) -> list[list[dict[str, str]]]:
    # Distinct for up to 3,600 prompts (a job stores a repeated prompt once).
    return [[{"role": "user", "content": f"w{i % 60} w{(i // 60) % 60} good"}] for i in range(n)]


def naive_run(server, prompts, max_tokens: int) -> tuple[float, list[float]]:
    """One request at a time with a plain HTTP client: (seconds, latencies in ms)."""
    import httpx2 as httpx

    latencies = []
    started = time.perf_counter()
    with httpx.Client(timeout=120) as client:
        for i, messages in enumerate(prompts):
            t0 = time.perf_counter()
            body = {"model": server.model, "messages": messages, "max_tokens": max_tokens}
            answer = client.post(f"{server.base_url}/chat/completions", json={**body, "seed": i})
            answer.raise_for_status()
            assert answer.json()["choices"][0]["message"]["content"].strip()
            latencies.append((time.perf_counter() - t0) * 1000)
    return time.perf_counter() - started, latencies


def setup_django(folder: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def job_run(server, prompts, max_tokens: int, concurrency: int) -> dict:
    """The generation job, in this process: seconds, latencies, lost and doubled replies."""
    from annotate.models import GeneratedSample, Project, Response
    from annotate.services.generation import generation_job_create, generator_create
    from annotate.services.generation_run import generation_job_execute

    project = Project.objects.create(slug=f"bench-{time.time_ns()}", name="bench")
    generator_create(
        project=project,
        name="tiny",
        base_url=server.base_url,
        model=server.model,
        max_tokens=max_tokens,
        seed=0,
        concurrency=concurrency,
    )
    job = generation_job_create(
        project=project, generators=["tiny"], prompts=prompts, enqueue=False
    )
    started = time.perf_counter()
    job = generation_job_execute(job_id=job.pk)
    seconds = time.perf_counter() - started
    if job.status != "succeeded":
        raise SystemExit(f"the generation job {job.status}: {job.error}")
    stored = set(
        GeneratedSample.objects.filter(prompt__project=project).values_list("prompt_id", "index")
    )
    latencies = list(
        Response.objects.filter(prompt__project=project).values_list("latency_ms", flat=True)
    )
    return {
        "seconds": seconds,
        "latencies": latencies,
        "lost": len(prompts) - len(stored),
        "doubled": (job.completion_tokens - len(prompts) * max_tokens) // max_tokens,
    }


def report(n: int, naive_s: float, naive_lat: list[float], job: dict, concurrency: int) -> None:
    naive_rate, job_rate = n / naive_s, n / job["seconds"]
    ratio = job_rate / naive_rate
    print(f"prompts: {n}, one sample each")
    print(
        f"naive sequential client: {naive_rate:.1f} responses/s, "
        f"p50 {statistics.median(naive_lat):.0f} ms, p99 {p99(naive_lat):.0f} ms"
    )
    print(
        f"generation job (concurrency {concurrency}): {job_rate:.1f} responses/s, "
        f"p50 {statistics.median(job['latencies']):.0f} ms, p99 {p99(job['latencies']):.0f} ms"
    )
    verdict = "met" if ratio >= TARGET_RATIO and not (job["lost"] or job["doubled"]) else "NOT met"
    print(
        f"ratio {ratio:.2f}x (target >= {TARGET_RATIO:g}x: {ratio / TARGET_RATIO:.2f} of it); "
        f"lost {job['lost']}, doubled {job['doubled']}; target {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="seconds: 24 prompts, 8 tokens")
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--continuous-batching",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve with continuous batching (what a production server such as vLLM does)",
    )
    args = parser.parse_args()
    n, max_tokens = (24, 8) if args.smoke else (args.prompts, args.max_tokens)

    from scripts.chat_server import ChatServer
    from tests.rewardtrain.tiny import make_chat_lm

    with tempfile.TemporaryDirectory(prefix="bench-generation-") as tmp:
        folder = Path(tmp)
        model = make_chat_lm(folder / "tiny-chat")
        flags = ("--continuous-batching",) if args.continuous_batching else ()
        server = ChatServer(model=str(model), log=folder / "serve.log", extra_args=flags)
        server.start()
        try:
            setup_django(folder)
            prompts = prompts_of(n)
            naive_run(server, prompts[:2], max_tokens)  # warm the server up
            naive_s, naive_lat = naive_run(server, prompts, max_tokens)
            job = job_run(server, prompts, max_tokens, args.concurrency)
        finally:
            server.stop()
    report(n, naive_s, naive_lat, job, args.concurrency)


if __name__ == "__main__":
    main()
