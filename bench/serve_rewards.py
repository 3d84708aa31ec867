"""The reward server under RL-trainer load: batching across requests against a naive server
that scores each request on its own (OpenRLHF's example server: the model called inside the
request handler, one request at a time), same model, same HTTP stack, same JSON.

    .venv/bin/python bench/serve_rewards.py            # 32 clients x 8 items, 30 s per server
    .venv/bin/python bench/serve_rewards.py --runs 3   # alternate the servers three times
    .venv/bin/python bench/serve_rewards.py --smoke    # seconds: a few clients, short texts

Each client posts 8 (prompt, response) items of varied length (responses from a few words to a
few hundred, heavy-tailed like sampled rollouts), waits for the answer and posts again. Each
server runs in a child process (uvicorn, the shipped MiniLM with a reward head, CPU by
default); the load generator is this process. Prints items/s and p50/p99 latency of each
server, and the ratios.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

WORDS = (
    "the a of to and in is it that for on with as was at by this be are from or an have not "
    "they which one you had all were but we there can been has more if will would when who "
    "model reward answer question river mountain ocean bread coffee garden winter summer city "
    "engine planet music story window market simple careful quickly because however therefore "
    "example number light water energy system people history science language computer"
).split()


def make_items(rng: random.Random, count: int, max_words: int) -> list[dict]:
    items = []
    for _ in range(count):
        prompt = " ".join(rng.choices(WORDS, k=rng.randint(5, 40))) + "?"
        words = min(max_words, max(3, int(rng.lognormvariate(3.8, 0.9))))
        items.append({"prompt": prompt, "response": " ".join(rng.choices(WORDS, k=words))})
    return items


# --- the servers (child processes) ---


def naive_app(scorer, max_items: int):
    """OpenRLHF's example style: the handler parses the request and calls the model on it
    alone, in the event loop, so requests are scored one at a time and never together."""
    from rewardtrain.serving.inputs import InputError, parse_body, reward_items

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            prompts, responses = reward_items(parse_body(body), max_items=max_items)
            status, payload = 200, {"rewards": scorer.score(prompts, responses)}
        except InputError as exc:
            status, payload = 400, {"error": str(exc)}
        data = json.dumps(payload).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    return app


def serve(kind: str, model: str, device: str, max_batch_tokens: int, max_wait_ms: float) -> None:
    import socket

    import torch
    import uvicorn

    from rewardtrain.core.model import default_backbone
    from rewardtrain.core.scoring import RewardScorer
    from rewardtrain.serving.app import RewardsApp
    from rewardtrain.serving.batcher import Batcher, LoadedModel

    # MiniLM's reward head is new: the same seed gives both servers the same one.
    torch.manual_seed(0)
    scorer = RewardScorer.load(model or default_backbone(), device=device)
    # The first forward sets up its kernels: not part of what is measured.
    scorer.score(["warm up"], ["a first forward"])
    if kind == "naive":
        app, batcher = naive_app(scorer, 1024), None
    else:
        loaded = LoadedModel(scorer, 1)
        batcher = Batcher(
            lambda: loaded, max_batch_tokens=max_batch_tokens, max_wait_s=max_wait_ms / 1000
        )
        batcher.start()
        app = RewardsApp(
            batcher=batcher,
            model=lambda: loaded,
            project="bench",
            device=device,
            auth=None,
            max_items=1024,
        )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    print(f"ready {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


# --- the load (this process) ---


def load(
    port: int,
    clients: int,
    per_request: int,
    seconds: float,
    warmup: float,
    seed: int,
    max_words: int,
):
    """Closed-loop clients (each on its own keep-alive connection) sending for warmup + seconds,
    then waiting for their last answers. Items/s counts the items answered inside the measured
    window; latency is over every request sent inside it, also those answered after it (so a
    server's queue cannot hide behind the window's end: with 32 clients a slow server answers a
    request tens of seconds after it was sent). The clock starts once every client has had its
    first answer: on a busy machine a cold server can take longer than the warm-up to answer
    at all, and a window with no answer in it measures nothing."""
    window: dict[str, float] = {}
    latencies: list[float] = []
    items_done = [0]
    errors: list[str] = []
    lock = threading.Lock()

    def start_clock() -> None:
        now = time.monotonic()
        window["from"], window["end"] = now + warmup, now + warmup + seconds

    all_answered_once = threading.Barrier(clients, action=start_clock)

    def client(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1800)
        body = json.dumps({"items": make_items(rng, per_request, max_words)})
        conn.request("POST", "/v1/rewards", body, {"Content-Type": "application/json"})
        conn.getresponse().read()
        all_answered_once.wait()
        measure_from, end = window["from"], window["end"]
        while time.monotonic() < end:
            body = json.dumps({"items": make_items(rng, per_request, max_words)})
            sent = time.monotonic()
            conn.request("POST", "/v1/rewards", body, {"Content-Type": "application/json"})
            answer = conn.getresponse()
            data = answer.read()
            done = time.monotonic()
            if answer.status != 200 or len(json.loads(data)["rewards"]) != per_request:
                with lock:
                    errors.append(f"{answer.status}: {data[:200]!r}")
                continue
            with lock:
                if sent >= measure_from:
                    latencies.append(done - sent)
                if measure_from <= done <= end:
                    items_done[0] += per_request
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    drain = time.monotonic() - window["end"]
    latencies.sort()

    def pick(q: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return {
        "items_per_s": items_done[0] / seconds,
        "requests": len(latencies),
        "p50_ms": pick(0.50) * 1000,
        "p99_ms": pick(0.99) * 1000,
        "drain_s": drain,
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
    }


def start_server(kind: str, args) -> tuple[subprocess.Popen, int]:
    command = [
        sys.executable, os.path.abspath(__file__), "--serve", kind,
        "--device", args.device, "--max-batch-tokens", str(args.max_batch_tokens),
        "--max-wait-ms", str(args.max_wait_ms),
    ]  # fmt: skip
    if args.model:
        command += ["--model", args.model]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": ROOT}
    )
    line = process.stdout.readline()
    if not line.startswith("ready "):
        process.kill()
        raise SystemExit(f"the {kind} server did not start: {line!r}")
    return process, int(line.split()[1])


def probe(port: int) -> list[float]:
    """The server's rewards on fixed items: both servers must give the same."""
    items = make_items(random.Random(7), 16, 300)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    body = json.dumps({"items": items})
    conn.request("POST", "/v1/rewards", body, {"Content-Type": "application/json"})
    return json.loads(conn.getresponse().read())["rewards"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="seconds: 4 clients, short texts")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--items", type=int, default=8, help="items per request")
    parser.add_argument("--runs", type=int, default=1, help="rounds, alternating the servers")
    parser.add_argument("--model", default="", help="a model folder (default: the shipped MiniLM)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-batch-tokens", type=int, help="default: the server's for the device")
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--serve", choices=["naive", "batched"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.max_batch_tokens is None:
        from rewardtrain.serving.server import DEFAULT_MAX_BATCH_TOKENS

        args.max_batch_tokens = DEFAULT_MAX_BATCH_TOKENS[args.device.split(":")[0]]
    if args.serve:
        serve(args.serve, args.model, args.device, args.max_batch_tokens, args.max_wait_ms)
        return
    seconds, warmup, clients, max_words = args.seconds, 3.0, args.clients, 400
    if args.smoke:
        # The first answers have warmed the server: in a smoke run every request counts.
        seconds, warmup, clients, max_words = 3.0, 0.0, 4, 40
    print(
        f"{clients} clients x {args.items} items, {seconds:g} s per server after {warmup:g} s "
        f"warm-up, device {args.device}, {os.cpu_count()} CPUs, model "
        f"{args.model or 'MiniLM (shipped)'}; batched: --max-batch-tokens {args.max_batch_tokens} "
        f"--max-wait-ms {args.max_wait_ms:g}",
        flush=True,
    )
    results: dict[str, list[dict]] = {"naive": [], "batched": []}
    probes: dict[str, list[float]] = {}
    for run in range(args.runs):
        for kind in ("naive", "batched"):
            process, port = start_server(kind, args)
            try:
                result = load(
                    port, clients, args.items, seconds, warmup, seed=run, max_words=max_words
                )
                probes[kind] = probe(port)
            finally:
                process.terminate()
                process.wait(timeout=60)
            results[kind].append(result)
            print(
                f"run {run + 1} {kind:8s} {result['items_per_s']:8.1f} items/s  "
                f"p50 {result['p50_ms']:8.1f} ms  p99 {result['p99_ms']:8.1f} ms  "
                f"({result['requests']} requests timed, last answers {result['drain_s']:.1f} s "
                f"after the window, {result['errors']} errors) {result['first_error']}",
                flush=True,
            )
    diff = max(abs(a - b) for a, b in zip(probes["naive"], probes["batched"], strict=True))
    print(f"same items, both servers: largest reward difference {diff:.2e}")

    def summary(kind: str, key: str) -> str:
        values = [r[key] for r in results[kind]]
        return f"{statistics.mean(values):.1f} ({min(values):.1f}-{max(values):.1f})"

    for kind in ("naive", "batched"):
        print(
            f"{kind:8s} items/s {summary(kind, 'items_per_s')}  p50 ms {summary(kind, 'p50_ms')}  "
            f"p99 ms {summary(kind, 'p99_ms')}"
        )
    if not all(r["requests"] for kind in results for r in results[kind]):
        raise SystemExit("a server answered no request inside the measured window")
    ratios = [
        b["items_per_s"] / n["items_per_s"]
        for n, b in zip(results["naive"], results["batched"], strict=True)
    ]
    p99 = [
        b["p99_ms"] / n["p99_ms"] for n, b in zip(results["naive"], results["batched"], strict=True)
    ]
    print(
        f"batched / naive: items/s {statistics.mean(ratios):.2f}x "
        f"(runs {min(ratios):.2f}-{max(ratios):.2f}; target >= 2x), "
        f"p99 {statistics.mean(p99):.2f}x (target < 1x)"
    )
    errors = sum(r["errors"] for kind in results for r in results[kind])
    if errors:
        raise SystemExit(f"{errors} failed requests")
    if diff > 1e-4:
        raise SystemExit(f"the servers disagree on the same items (by {diff:.2e})")


if __name__ == "__main__":
    main()
