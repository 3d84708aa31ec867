"""Reward-model training: prefloop's loop against TRL's RewardTrainer on the same data, backbone
and hyper-parameters; prints pairs/s, peak memory (RSS) and held-out accuracy, and the ratios.

    .venv/bin/python bench/train_vs_trl.py            # 2,000 pairs, fixed and varied lengths
    .venv/bin/python bench/train_vs_trl.py --quick    # 200 pairs, a smoke run
    .venv/bin/python bench/train_vs_trl.py --bf16 both  # also each trainer in the other precision
    .venv/bin/python bench/train_vs_trl.py --decoder  # a ~30M random Llama: full FT and LoRA,
                                                      # then 1 against 2 gloo ranks
    .venv/bin/python bench/train_vs_trl.py --decoder --same-order  # TRL in prefloop's batch order
    .venv/bin/python bench/train_vs_trl.py --smoke    # seconds: a toy decoder, in-process

Precision: by default each trainer runs in bf16 where the hardware has it (CUDA, or a CPU with
AMX/AVX512-BF16) and fp32 elsewhere: on an AVX2-only CPU bf16 matmuls are emulated and a bf16
step is many times slower than an fp32 one, for TRL as for prefloop.

Every run is a child process of this script (so its peak RSS is its own), runs alternate
between the two trainers (a shared machine's load hits both alike), and the data are one
file that both read. On CUDA the same runs also report tokens/s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

TOPICS = {
    "the ocean": ["waves", "tides", "salt water", "coral reefs", "whales"],
    "volcanoes": ["lava", "magma", "eruptions", "ash clouds", "craters"],
    "chess": ["the king", "a pawn", "checkmate", "openings", "the board"],
    "bread baking": ["yeast", "dough", "the oven", "flour", "the crust"],
    "bicycles": ["pedals", "the chain", "gears", "tyres", "brakes"],
    "honey bees": ["the hive", "pollen", "nectar", "the queen", "honeycomb"],
    "the moon": ["craters", "lunar phases", "tides", "astronauts", "orbit"],
    "coffee": ["espresso", "beans", "roasting", "caffeine", "grinders"],
    "rain forests": ["canopy", "humidity", "jaguars", "vines", "biodiversity"],
    "guitars": ["strings", "chords", "frets", "tuning", "the neck"],
    "photography": ["the lens", "exposure", "aperture", "light", "the shutter"],
    "glaciers": ["ice sheets", "moraines", "crevasses", "melting", "valleys"],
    "trains": ["the tracks", "locomotives", "stations", "carriages", "timetables"],
    "tomatoes": ["vines", "seeds", "ripening", "sauce", "greenhouses"],
    "deserts": ["sand dunes", "cacti", "oases", "heat", "camels"],
    "the heart": ["blood", "arteries", "the pulse", "valves", "oxygen"],
}
OPENERS = [
    "Can you tell me something about {t}?",
    "I want to learn about {t}. What should I know?",
    "Explain {t} to a curious student.",
    "What is interesting about {t}?",
]
POLITE = [
    "Happy to help!",
    "Great question.",
    "Sure, here is a short overview.",
    "Thanks for asking.",
]
RUDE = ["Ugh, whatever.", "That is a dumb question.", "Look it up yourself.", "Fine, if you must."]
FILLER = [
    "Many people find this surprising at first.",
    "There is a long history behind it.",
    "Scientists still study it today.",
    "It changes from one season to the next.",
    "You can see examples of it in many places.",
    "Some details are still debated by experts.",
]
CONTEXT = [
    "I have been reading a lot lately and talking with friends about it.",
    "My teacher mentioned it in class last week and I got curious.",
    "We are planning a trip and this came up in our discussion.",
    "I saw a documentary on television that touched on it briefly.",
]


def _answer(rng: random.Random, topic: str, polite: bool, filler: int) -> str:
    a, b = rng.sample(TOPICS[topic], 2)
    parts = [rng.choice(POLITE if polite else RUDE), f"{topic.capitalize()} involve {a} and {b}."]
    parts += [rng.choice(FILLER) for _ in range(filler)]
    return " ".join(parts)


def make_pairs(n: int, seed: int, varied: bool) -> list[dict]:
    """Chosen answers are on the asked topic and polite; rejected ones are off-topic (half the
    pairs) or rude (the other half). Fixed: ~62 tokens a sequence; varied: ~20 to ~600."""
    rng = random.Random(seed)
    names = list(TOPICS)
    rows = []
    for i in range(n):
        topic = rng.choice(names)
        # Varied: half the prompts carry some context, and one in twenty a long one that
        # pushes the pair past max_length (TRL drops such pairs; prefloop cuts the prompt's start).
        draw = rng.random()
        context = (
            (rng.randint(30, 45) if draw < 0.05 else rng.randint(0, 14) if draw < 0.5 else 0)
            if varied
            else 0
        )
        prompt = " ".join(
            [rng.choice(CONTEXT) for _ in range(context)] + [rng.choice(OPENERS).format(t=topic)]
        )
        filler = rng.randint(0, 16) if varied else 5
        chosen = _answer(rng, topic, True, filler)
        if i % 2:
            rejected = _answer(rng, rng.choice([t for t in names if t != topic]), True, filler)
        else:
            rejected = _answer(rng, topic, False, filler)
        rows.append(
            {"prompt": prompt, "chosen": chosen, "rejected": rejected, "prompt_key": f"{seed}-{i}"}
        )
    return rows


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# Dense bf16 tensor-core peak of an H100/H200 SXM, TFLOP/s: the denominator of the share.
GPU_PEAK_TFLOPS = 989.0


def _cuda_stats(model, tokens_per_second: float) -> dict:
    """tokens/s and the share of the GPU's bf16 peak: 6 FLOPs per weight per token (forward
    and backward) over the weights that multiply (embeddings only look up)."""
    import torch

    if not torch.cuda.is_available():
        return {}
    weights = sum(
        p.numel()
        for name, p in model.named_parameters()
        if "embeddings" not in name and p.ndim >= 2
    )
    return {
        "tokens_per_second": tokens_per_second,
        "share_of_gpu_peak": 6 * weights * tokens_per_second / (GPU_PEAK_TFLOPS * 1e12),
        "gpu": torch.cuda.get_device_name(),
        "peak_gpu_memory_mb": torch.cuda.max_memory_allocated() / 2**20,
    }


def run_ours(spec: dict) -> dict:
    import torch

    from rewardtrain.core.config import TrainConfig
    from rewardtrain.core.device import resolve_device
    from rewardtrain.core.evaluation import evaluate
    from rewardtrain.core.precision import use_bf16
    from rewardtrain.core.scoring import RewardScorer
    from rewardtrain.core.training import train

    data = json.load(open(spec["data"]))
    # "config": a whole TrainConfig (bench/real_preferences.py: the defaults); else this bench's.
    cfg = TrainConfig.from_dict(spec["config"]) if "config" in spec else _bench_config(spec)
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    if spec.get("nproc", 1) > 1:
        return _ours_on_ranks(spec, cfg, data)
    started = time.perf_counter()
    result = train(data["train"], data["validation"], cfg)
    wall = time.perf_counter() - started
    scorer = RewardScorer(result.model, result.tokenizer, result.device, cfg.max_length)
    r_c, r_r = scorer.score_pairs(data["test"])
    metrics = evaluate(data["test"], r_c, r_r, n_bootstrap=0)
    out = {
        "pairs_per_second": result.pairs_per_second,
        "train_seconds": result.step_seconds,
        "wall_seconds": wall,
        "test_accuracy": metrics["accuracy"],
        "test_log_loss": metrics["log_loss"],
        # A refit trains on the validation pairs too.
        "pairs_trained": len(data["train"]) + (len(data["validation"]) if cfg.refit else 0),
        "truncated": result.truncated,
        "bf16": use_bf16(cfg, resolve_device(cfg.device)),
        "threads": torch.get_num_threads(),
        "steps": result.steps,
        "refit_steps": result.refit_steps,
    }
    out.update(_cuda_stats(result.model, result.tokens_per_second))
    return out


def _bench_config(spec: dict):
    """This bench's settings, the same as TRL is given."""
    from rewardtrain.core.config import TrainConfig

    return TrainConfig(
        backbone=spec["backbone"],
        max_length=spec["max_length"],
        batch_size=spec["batch_size"],
        epochs=spec["epochs"],
        learning_rate=spec["learning_rate"],
        seed=spec.get("seed", 0),
        bf16=spec["bf16"],
        cpu_threads=spec["threads"],
        lora_r=spec.get("lora_r", 0),
        lora_alpha=2 * spec.get("lora_r", 0) or 16,
        # Stated on both sides (TrainConfig's default is 0.0 too): the same adapters as TRL's.
        lora_dropout=spec.get("lora_dropout", 0.0),
        lora_target_modules="all-linear",
        # This bench compares loops step for step: one run, no refit (a refit is a second).
        refit=False,
    )


def _ours_on_ranks(spec: dict, cfg, data: dict) -> dict:
    """prefloop on `nproc` gloo ranks launched with torchrun, as a training run does."""
    from rewardtrain.core.evaluation import evaluate
    from rewardtrain.core.launch import train_and_save
    from rewardtrain.core.precision import use_bf16
    from rewardtrain.core.scoring import RewardScorer

    folder = tempfile.mkdtemp()
    started = time.perf_counter()
    figures = train_and_save(data["train"], data["validation"], cfg, folder, nproc=spec["nproc"])
    wall = time.perf_counter() - started
    r_c, r_r = RewardScorer.load(folder, device="cpu").score_pairs(data["test"])
    metrics = evaluate(data["test"], r_c, r_r, n_bootstrap=0)
    return {
        "pairs_per_second": figures["pairs_per_second"],
        "train_seconds": len(data["train"]) * cfg.epochs / figures["pairs_per_second"],
        "wall_seconds": wall,
        "test_accuracy": metrics["accuracy"],
        "test_log_loss": metrics["log_loss"],
        "pairs_trained": len(data["train"]),
        "truncated": figures["truncated"],
        "bf16": use_bf16(cfg, "cpu"),
        "threads": 1,
    }


def run_trl(spec: dict) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging
    from trl import RewardConfig, RewardTrainer

    hf_logging.set_verbosity_error()
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    data = json.load(open(spec["data"]))
    tok = AutoTokenizer.from_pretrained(spec["backbone"])
    torch.manual_seed(spec.get("seed", 0))
    model = AutoModelForSequenceClassification.from_pretrained(
        spec["backbone"], num_labels=1, attn_implementation=spec.get("attention", "sdpa")
    )
    keep = ("prompt", "chosen", "rejected")
    train_ds = Dataset.from_list([{k: r[k] for k in keep} for r in data["train"]])
    cuda = torch.cuda.is_available()
    from rewardtrain.core.config import TrainConfig
    from rewardtrain.core.device import resolve_device
    from rewardtrain.core.precision import use_bf16

    # The same rule as prefloop's (None = bf16 where the hardware has it).
    bf16 = use_bf16(TrainConfig(bf16=spec["bf16"]), resolve_device(""))
    # "trl_defaults": TRL's own batch, epochs, rate, schedule and checkpointing; else ours.
    hyper = {} if spec.get("trl_defaults") else _trl_hyper_parameters(spec)
    args = RewardConfig(
        output_dir=tempfile.mkdtemp(),
        **hyper,
        max_length=spec["max_length"],
        bf16=bf16,
        # MiniLM has no EOS token: TRL fails without one (shown by the main script).
        eos_token=tok.sep_token if tok.eos_token is None else None,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        logging_steps=1000,
        disable_tqdm=True,
        seed=spec.get("seed", 0),
        use_cpu=not cuda,
        dataloader_num_workers=0,
    )
    peft_config = None
    if spec.get("lora_r"):
        from peft import LoraConfig

        peft_config = LoraConfig(
            task_type="SEQ_CLS",
            r=spec["lora_r"],
            lora_alpha=2 * spec["lora_r"],
            lora_dropout=spec.get("lora_dropout", 0.0),
            target_modules="all-linear",
        )
    started = time.perf_counter()
    trainer_class = _same_order(RewardTrainer, spec) if spec.get("same_order") else RewardTrainer
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=train_ds,
        processing_class=tok,
        peft_config=peft_config,
    )
    kept = len(trainer.train_dataset)
    tick = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - tick
    wall = time.perf_counter() - started
    epochs = args.num_train_epochs
    tokens = (
        sum(len(r["chosen_ids"]) + len(r["rejected_ids"]) for r in trainer.train_dataset) * epochs
    )

    # Held-out accuracy over the whole test set, with TRL's own input (prompt + response + eos).
    # A test input over max_length loses its start, as in prefloop (TRL's own evaluate() would
    # drop the pair; cutting its end would cut the response and the eos the reward is read at).
    # Inputs go in length order, as prefloop's scorer does: less padding, the same rewards.
    eos = args.eos_token or tok.eos_token
    model = trainer.model
    model.eval()
    device = next(model.parameters()).device
    tok.truncation_side = "left"
    texts = [r["prompt"] + r[side] + eos for side in ("chosen", "rejected") for r in data["test"]]
    ids = tok(texts, truncation=True, max_length=spec["max_length"])["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    scores = [0.0] * len(ids)
    with torch.inference_mode():
        for start in range(0, len(order), 64):
            chunk = order[start : start + 64]
            enc = tok.pad({"input_ids": [ids[i] for i in chunk]}, return_tensors="pt")
            r = model(**{k: v.to(device) for k, v in enc.items()}).logits.squeeze(-1).float()
            for i, value in zip(chunk, r.tolist(), strict=True):
                scores[i] = value
    n_test = len(data["test"])
    wins = [c > r for c, r in zip(scores[:n_test], scores[n_test:], strict=True)]
    out = {
        "pairs_per_second": kept * epochs / train_seconds,
        "train_seconds": train_seconds,
        "wall_seconds": wall,
        "test_accuracy": sum(wins) / len(wins),
        "pairs_trained": kept,
        "dropped": len(data["train"]) - kept,
        "bf16": bf16,
        "threads": torch.get_num_threads(),
    }
    out.update(_cuda_stats(model, tokens / train_seconds))
    return out


def _same_order(trainer_class, spec: dict):
    """TRL's RewardTrainer drawing prefloop's batch order (rewardtrain.core.data.random_batches,
    seeded as prefloop seeds it, epoch by epoch): both trainers then see the same pairs in each
    step, and the seed-to-seed noise of which pairs meet when (several points of accuracy on
    this bench) no longer separates them. Neither order favours either trainer."""
    from torch.utils.data import Sampler

    from rewardtrain.core.data import random_batches

    batch_size, seed = spec["batch_size"], spec.get("seed", 0)

    class PrefloopOrder(Sampler):
        def __init__(self, n: int) -> None:
            self.n, self.epoch = n, 0

        def __len__(self) -> int:
            return self.n

        def __iter__(self):
            batches = random_batches(self.n, batch_size, seed + self.epoch)
            self.epoch += 1
            return iter([i for batch in batches for i in batch])

    class SameOrderTrainer(trainer_class):
        def _get_train_sampler(self, train_dataset=None):
            return PrefloopOrder(
                len(self.train_dataset if train_dataset is None else train_dataset)
            )

    return SameOrderTrainer


def _trl_hyper_parameters(spec: dict) -> dict:
    """The settings prefloop trains with, for TRL's RewardConfig."""
    return {
        "per_device_train_batch_size": spec["batch_size"],
        "num_train_epochs": spec["epochs"],
        "learning_rate": spec["learning_rate"],
        "weight_decay": 0.01,
        "warmup_steps": 0.1,
        "lr_scheduler_type": "linear",
        "max_grad_norm": 1.0,
        "gradient_checkpointing": spec.get("gradient_checkpointing", False),
    }


def trl_without_eos(backbone: str) -> str:
    """What TRL does with MiniLM's tokenizer (no EOS token) when eos_token is not set."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging
    from trl import RewardConfig, RewardTrainer

    hf_logging.set_verbosity_error()
    tok = AutoTokenizer.from_pretrained(backbone)
    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=1)
    ds = Dataset.from_list([{"prompt": "Hi?", "chosen": "Hello!", "rejected": "Go away."}] * 4)
    args = RewardConfig(output_dir=tempfile.mkdtemp(), report_to="none", use_cpu=True, bf16=False)
    try:
        RewardTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    except Exception as exc:  # noqa: BLE001 - the point is to show whatever it raises
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    return "no error"


def _child(kind: str, spec: dict) -> dict:
    spec_file = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(spec, spec_file)
    spec_file.close()
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--worker", kind, "--spec", spec_file.name],
        capture_output=True,
        text=True,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


DECODER_SIZES = {
    # ~30M parameters: 10 blocks of 512 wide, Llama's SwiGLU and RMSNorm, a word-level vocab.
    "full": {"hidden": 512, "layers": 10, "heads": 8},
    "smoke": {"hidden": 64, "layers": 2, "heads": 4},
}


def build_decoder(
    folder: str, texts: list[str], hidden: int, layers: int, heads: int, seed: int = 0
) -> int:
    """A random-init Llama-style sequence classifier with a word-level tokenizer learnt from
    `texts`, saved as a backbone folder (nothing downloaded). Returns its parameter count."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForSequenceClassification, PreTrainedTokenizerFast

    words = Tokenizer(models.WordLevel(unk_token="<unk>"))
    words.normalizer = normalizers.Lowercase()
    words.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words.train_from_iterator(
        [*texts, "User: System: Assistant:"],
        trainers.WordLevelTrainer(special_tokens=["<pad>", "<unk>", "<|endoftext|>"]),
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=words,
        pad_token="<pad>",
        unk_token="<unk>",
        eos_token="<|endoftext|>",
        bos_token="<|endoftext|>",
    )
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=hidden * 11 // 4,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=1024,
        num_labels=1,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForSequenceClassification(config)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


# 64 training pairs: 8 optimizer steps of batch 8. With 32 (4 steps) both trainers ended near
# chance (log-loss above ln 2), so held-out accuracy mostly read the random initial weights;
# 64 fit three seeds of both modes in ~35 minutes of this 2-core machine in bf16. Chosen
# before any run at this size, the same for both trainers. 400 test pairs (96 before): with 96
# one run's accuracy moved by ~0.05 on test sampling alone, as much as the gap being measured;
# scoring 400 costs seconds.
DECODER_PAIRS, DECODER_TEST_PAIRS = 64, 400
DECODER_MODES = {
    # mode: (label, LoRA rank, learning rate for random-init weights)
    "full": ("full fine-tuning", 0, 3e-4),
    "lora": ("LoRA r=16", 16, 1e-3),
}


def decoder_main(args) -> None:
    """--decoder and --smoke: ours against TRL on a locally built decoder, full fine-tuning
    and LoRA, one round per seed (the seed draws the decoder's initial weights and both
    trainers' batch order), then prefloop on 1 against 2 gloo ranks (--smoke: a toy model,
    in-process, one seed)."""
    import torch

    smoke = args.smoke
    modes = args.modes.split(",")
    n_pairs, n_test = (48, 24) if smoke else (args.pairs, args.test_pairs)
    varied = args.variants.split(",")[0] == "varied"
    # Long enough for every pair (the decoder has 1,024 positions): TRL drops a pair longer
    # than max_length, so at 512 it trained 59 of the 64 pairs while prefloop trained all 64;
    # pairs/s of different data is no comparison. --max-length 512 shows that case.
    max_length = args.max_length or (1024 if varied else 128)
    data = {
        "train": make_pairs(n_pairs, 1, varied),
        "validation": make_pairs(max(n_pairs // 10, 8), 2, varied),
        "test": make_pairs(n_test, 3, varied),
    }
    texts = [
        r[k] for split in data.values() for r in split for k in ("prompt", "chosen", "rejected")
    ]
    size = DECODER_SIZES["smoke" if smoke else "full"]
    seeds = [args.first_seed + i for i in range(1 if smoke else args.rounds)]
    data_file = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(data, data_file)
    data_file.close()
    base = {
        "data": data_file.name,
        "max_length": max_length,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "bf16": {"auto": None, "on": True, "off": False}.get(args.bf16),
        "threads": args.threads,
        "same_order": args.same_order,
    }
    if smoke:  # a toy model: one thread and fp32 waste no time on start-up
        base.update(bf16=False, threads=1)

    def run(kind: str, spec: dict) -> dict:
        if smoke:  # one process, seconds: the figures are printed, not meaningful
            result = (run_ours if kind == "ours" else run_trl)(spec)
            return dict(result, peak_rss_mb=peak_rss_mb())
        return _child(kind, spec)

    precision = _decoder_precision(base["bf16"])
    results = []
    for seed in seeds:
        folder = tempfile.mkdtemp(prefix="decoder-")
        params = build_decoder(folder, texts, seed=seed, **size)
        print(
            f"seed {seed}: random-init Llama, {params / 1e6:.1f}M parameters, word-level vocab; "
            f"{n_pairs} train pairs ({'varied' if varied else 'fixed'} lengths, max_length "
            f"{max_length}), {n_test} test, batch {args.batch_size}, {args.epochs} epoch(s); "
            f"cpu, {precision}, torch threads {base['threads'] or torch.get_num_threads()}, "
            f"cores {os.cpu_count()}, load {os.getloadavg()[0]:.1f}; batch order: "
            f"{'the same for both' if args.same_order else 'each its own, drawn from the seed'}",
            flush=True,
        )
        for mode in (m for m in DECODER_MODES if m in modes):
            label, lora_r, lr = DECODER_MODES[mode]
            spec = {
                **base,
                "backbone": folder,
                "seed": seed,
                "lora_r": lora_r,
                "lora_dropout": 0.0,
                "learning_rate": args.learning_rate or lr,
                "attention": "sdpa",
            }
            # Alternate who goes first: a shared machine's load drifts.
            for kind in ("trl", "ours") if seed % 2 == 0 else ("ours", "trl"):
                result = dict(run(kind, spec), mode=mode, kind=kind, seed=seed)
                results.append(result)
                print(f"  {label}, seed {seed}, {kind:4s}: {_fmt(result)}", flush=True)
        if "ranks" in modes and not smoke and seed == seeds[0]:
            spec = {**base, "backbone": folder, "seed": seed, "lora_r": 0}
            spec["learning_rate"] = args.learning_rate or DECODER_MODES["full"][2]
            results += _decoder_ranks(spec)
        shutil.rmtree(folder, ignore_errors=True)
    if smoke and "ranks" in modes:
        print("  1 vs 2 gloo ranks: left out of --smoke (torchrun start-up takes longer than it)")
    os.unlink(data_file.name)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    print(decoder_summary(results))


def _decoder_precision(bf16_setting: bool | None) -> str:
    """What both trainers train in, in words; the same rule decides for both (run_trl asks
    use_bf16 too)."""
    from rewardtrain.core.config import TrainConfig
    from rewardtrain.core.precision import cpu_has_native_bf16, use_bf16

    if not use_bf16(TrainConfig(bf16=bf16_setting), "cpu"):
        return "float32 for both"
    return (
        f"bf16 for both ({'this CPU has' if cpu_has_native_bf16() else 'forced; this CPU lacks'}"
        " native bf16)"
    )


def _decoder_ranks(spec: dict) -> list[dict]:
    """prefloop on 1 rank (2 threads) against 2 gloo ranks (1 thread each), full fine-tuning."""
    one = _child("ours", {**spec, "nproc": 1, "threads": 2})
    two = _child("ours", {**spec, "nproc": 2})
    print(f"  prefloop, 1 rank (2 threads): {_fmt(one)}")
    print(f"  prefloop, 2 gloo ranks (1 thread each): {_fmt(two)}")
    return [
        dict(result, mode="ranks", kind=f"{nproc} rank", seed=spec["seed"])
        for result, nproc in ((one, 1), (two, 2))
    ]


def decoder_summary(results: list[dict]) -> str:
    """Per mode: ours/TRL pairs/s of each seed's pair of runs (mean, range) and the held-out
    accuracy of each side (mean, range over seeds); the target is every seed's ratio >= 1.5
    and ours' mean accuracy >= TRL's. Also 2 ranks against 1 where run."""
    lines, verdicts = [], []
    for mode, (label, _, _) in DECODER_MODES.items():
        by_seed: dict[int, dict[str, dict]] = {}
        for r in results:
            if r["mode"] == mode:
                by_seed.setdefault(r["seed"], {})[r["kind"]] = r
        paired = [v for _, v in sorted(by_seed.items()) if {"ours", "trl"} <= set(v)]
        if not paired:
            continue
        ratios = [v["ours"]["pairs_per_second"] / v["trl"]["pairs_per_second"] for v in paired]
        acc = {k: [v[k]["test_accuracy"] for v in paired] for k in ("ours", "trl")}
        pps = {k: [v[k]["pairs_per_second"] for v in paired] for k in ("ours", "trl")}
        speed_met = min(ratios) >= 1.5
        acc_met = _mean(acc["ours"]) >= _mean(acc["trl"])
        verdicts.append(speed_met and acc_met)
        bf16 = {r["bf16"] for v in paired for r in v.values()}
        lines += [
            f"{label}, {len(paired)} seed(s) {sorted(by_seed)}, "
            f"{'/'.join('bf16' if b else 'float32' for b in sorted(bf16))}:",
            f"  pairs/s ours {_spread(pps['ours'], '.3f')}, TRL {_spread(pps['trl'], '.3f')}; "
            f"ours/TRL x{_spread(ratios, '.2f')}: {'met' if speed_met else 'NOT met'} (>= 1.5 "
            "every seed)",
            f"  held-out accuracy ours {_spread(acc['ours'], '.3f')}, TRL "
            f"{_spread(acc['trl'], '.3f')}; ours - TRL per seed "
            f"{', '.join(f'{o - t:+.3f}' for o, t in zip(acc['ours'], acc['trl'], strict=True))}: "
            f"{'met' if acc_met else 'NOT met'} (ours' mean >= TRL's)",
        ]
    ranks = {r["kind"]: r for r in results if r["mode"] == "ranks"}
    if {"1 rank", "2 rank"} <= set(ranks):
        one, two = ranks["1 rank"]["pairs_per_second"], ranks["2 rank"]["pairs_per_second"]
        lines.append(
            f"prefloop 2 gloo ranks / 1 rank: pairs/s {two:.3f} / {one:.3f} = x{two / one:.2f} "
            "(for information: two ranks share this machine's two cores)"
        )
    lines.append(f"decoder targets met: {bool(verdicts) and all(verdicts)}")
    return "\n".join(lines)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _spread(values: list[float], spec: str) -> str:
    """mean (min-max), or the one value."""
    if len(values) == 1:
        return format(values[0], spec)
    return f"{_mean(values):{spec}} ({min(values):{spec}}-{max(values):{spec}})"


def _fmt(result: dict) -> str:
    parts = [
        f"{result['pairs_per_second']:6.2f} pairs/s",
        f"train {result['train_seconds']:6.1f}s",
        f"peak RSS {result['peak_rss_mb']:6.0f} MB",
        f"test acc {result['test_accuracy']:.3f}",
        f"pairs trained {result['pairs_trained']}",
        "bf16" if result.get("bf16") else "float32",
    ]
    if "tokens_per_second" in result:
        parts.append(f"{result['tokens_per_second']:,.0f} tokens/s")
        parts.append(f"{100 * result['share_of_gpu_peak']:.2f}% of bf16 peak")
        parts.append(f"peak GPU mem {result['peak_gpu_memory_mb']:.0f} MB")
    if result.get("dropped"):
        parts.append(f"DROPPED {result['dropped']} long pairs")
    if result.get("truncated"):
        parts.append(f"truncated {result['truncated']} (prompt start)")
    return ", ".join(parts)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="200 pairs, one round: a smoke run")
    parser.add_argument("--pairs", type=int, help="default 2000; --decoder: 64")
    parser.add_argument("--test-pairs", type=int, help="default 500; --decoder: 400")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, help="default 16; --decoder: 8")
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="default 5e-5 (MiniLM); --decoder: 3e-4 full, 1e-3 LoRA (random-init weights)",
    )
    parser.add_argument("--variants", default="fixed,varied")
    parser.add_argument(
        "--rounds",
        type=int,
        help="alternating repeats of each run, default 1; --decoder: seeds, default 3",
    )
    parser.add_argument("--first-seed", type=int, default=0, help="--decoder: the first round's")
    parser.add_argument(
        "--max-length",
        type=int,
        help="--decoder: default 1024, which every pair fits (TRL drops longer ones)",
    )
    parser.add_argument(
        "--modes",
        default="full,lora,ranks",
        help="--decoder: which of full, lora and ranks (1 vs 2 gloo ranks) to run",
    )
    parser.add_argument(
        "--summarize",
        nargs="+",
        metavar="JSON",
        help="--decoder: print the summary of the rounds saved by earlier runs' --json",
    )
    parser.add_argument(
        "--threads", type=int, help="0 = torch's default (the default), for both; --decoder: 1"
    )
    parser.add_argument(
        "--bf16",
        choices=["auto", "on", "off", "both"],
        default="auto",
        help="auto: bf16 where the hardware has it (see above), for both trainers",
    )
    parser.add_argument("--backbone", default="")
    parser.add_argument(
        "--trl-attention",
        default="sdpa,eager",
        help="TRL's attention kernels to try (its best counts); prefloop picks one per batch",
    )
    parser.add_argument(
        "--same-order",
        action="store_true",
        help="--decoder: TRL draws prefloop's batch order, so both see the same pairs in each step",
    )
    parser.add_argument("--json", help="also write all results to this file")
    parser.add_argument("--decoder", action="store_true", help="a ~30M random Llama (see above)")
    parser.add_argument("--smoke", action="store_true", help="seconds: a toy decoder, in-process")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    return args


def main() -> None:
    args = parse_args()

    if args.worker:
        spec = json.load(open(args.spec))
        result = (run_ours if args.worker == "ours" else run_trl)(spec)
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return
    if args.summarize:
        print(decoder_summary([r for name in args.summarize for r in json.load(open(name))]))
        return
    if args.decoder or args.smoke:
        # A ~30M decoder costs ~20x MiniLM's step on a CPU (a pair of two ~150-token inputs:
        # seconds of a core): fewer training pairs, batch 8, three seeds, one thread each (on a
        # shared machine intra-op threads stall waiting for each other); three times as many
        # test pairs, to tell the two trainers' accuracy apart (a forward costs a third of a
        # training step). The varied lengths of real preference data unless --variants says
        # otherwise.
        args.pairs = args.pairs or DECODER_PAIRS
        args.test_pairs = args.test_pairs or DECODER_TEST_PAIRS
        args.batch_size = args.batch_size or 8
        args.rounds = args.rounds or 3
        args.threads = args.threads if args.threads is not None else 1
        if args.variants == "fixed,varied":
            args.variants = "varied"
        decoder_main(args)
        return
    encoder_main(args)


def encoder_main(args: argparse.Namespace) -> None:
    """The default comparison: a MiniLM-sized encoder, each variant of the data in turn, every
    run in a child process, the best of each trainer against the other's best."""
    args.learning_rate = args.learning_rate or 5e-5
    args.threads = args.threads or 0
    args.pairs, args.test_pairs = args.pairs or 2000, args.test_pairs or 500
    args.batch_size, args.rounds = args.batch_size or 16, args.rounds or 1

    from rewardtrain.core.model import default_backbone

    backbone = args.backbone or default_backbone()
    if args.quick:
        args.pairs, args.test_pairs = 200, 100
    import torch

    cuda = torch.cuda.is_available()
    print(f"backbone {backbone}")
    print(
        f"device {'cuda: ' + torch.cuda.get_device_name() if cuda else 'cpu'}, torch threads "
        f"{args.threads or torch.get_num_threads()}, cores {os.cpu_count()}, load {os.getloadavg()[0]:.1f}"
    )
    print(f"TRL with MiniLM's tokenizer and no eos_token: {trl_without_eos(backbone)}")
    all_results = {}
    bf16_modes = {"auto": [None], "on": [True], "off": [False], "both": [True, False]}[args.bf16]
    for variant in args.variants.split(","):
        all_results[variant] = encoder_variant(args, backbone, variant, bf16_modes)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(all_results, f, indent=2)


def encoder_variant(
    args: argparse.Namespace, backbone: str, variant: str, bf16_modes: list[bool | None]
) -> dict:
    """One variant ("fixed" or "varied" lengths): its data, its rounds of both trainers, and
    the best of each; returns {"runs": ..., "best": ...}."""
    varied = variant == "varied"
    max_length = 512 if varied else 128
    data = {
        "train": make_pairs(args.pairs, 1, varied),
        "validation": make_pairs(max(args.pairs // 10, 20), 2, varied),
        "test": make_pairs(args.test_pairs, 3, varied),
    }
    data_file = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(data, data_file)
    data_file.close()
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(backbone)
    lengths = [len(tok(r["prompt"] + " " + r["chosen"])["input_ids"]) for r in data["train"]]
    over = sum(
        1
        for r in data["train"]
        if max(len(tok(r["prompt"] + r[s] + "[SEP]")["input_ids"]) for s in ("chosen", "rejected"))
        > max_length
    )
    print(
        f"\n== {variant}: {args.pairs} train pairs, {len(data['validation'])} validation (ours only, "
        f"for its per-epoch check), {args.test_pairs} test; tokens per chosen input: "
        f"mean {sum(lengths) / len(lengths):.0f}, min {min(lengths)}, max {max(lengths)}; "
        f"max_length {max_length}; {over} pairs longer than it"
    )
    runs = {}
    for round_ in range(1 if args.quick else args.rounds):
        for bf16 in bf16_modes:
            base = {
                "data": data_file.name,
                "backbone": backbone,
                "max_length": max_length,
                "batch_size": args.batch_size,
                "epochs": args.epochs,
                "learning_rate": args.learning_rate,
                "bf16": bf16,
                "threads": args.threads,
            }
            trl_runs = [("trl", a) for a in args.trl_attention.split(",")]
            order = [*trl_runs, ("ours", "")] if round_ % 2 == 0 else [("ours", ""), *trl_runs]
            for kind, attention in order:
                result = _child(kind, {**base, "attention": attention})
                label = f"{kind:4s} bf16={'on ' if result['bf16'] else 'off'}"
                if attention:
                    label += f" attn={attention}"
                runs.setdefault(label, []).append(result)
                print(f"  round {round_ + 1} {label}: {_fmt(result)}", flush=True)
    best = {}
    for label, results in runs.items():
        kind = label.split()[0]
        top = max(results, key=lambda r: r["pairs_per_second"])
        if kind not in best or top["pairs_per_second"] > best[kind]["pairs_per_second"]:
            best[kind] = dict(top, label=label)
    ours, trl = best["ours"], best["trl"]
    print(f"  best ours ({ours['label']}): {_fmt(ours)}")
    print(f"  best TRL  ({trl['label']}): {_fmt(trl)}")
    print(
        f"  ratio ours/TRL: pairs/s x{ours['pairs_per_second'] / trl['pairs_per_second']:.2f}, "
        f"peak RSS x{ours['peak_rss_mb'] / trl['peak_rss_mb']:.2f}, "
        f"test accuracy {ours['test_accuracy']:.3f} vs {trl['test_accuracy']:.3f}"
    )
    os.unlink(data_file.name)
    return {"runs": runs, "best": best}


if __name__ == "__main__":
    main()
