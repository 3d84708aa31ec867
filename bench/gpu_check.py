"""One command for a CUDA machine: does prefloop train an LLM-sized reward model well there?

Builds a random-init reward model of Qwen2-0.5B's shape (no download: the config and a
word-level tokenizer are made here; Llama blocks with Qwen2's q/k/v biases, grouped-query
attention and SwiGLU, because transformers pairs the qwen2 model type with its own BPE
tokenizer class, which a locally made word-level vocabulary cannot fill), then trains 50 steps at sequence length 1024 in bf16
through the training run's own path (rewardtrain.core.launch.train_and_save): full fine-tuning,
LoRA, and DDP over every visible GPU. Prints tokens/s, MFU, peak memory per GPU and the 1 -> N
scaling efficiency. Target on one H100/H200: MFU >= 40% for full fine-tuning.

    .venv/bin/python bench/gpu_check.py            # needs CUDA; exits 2 without it
    .venv/bin/python bench/gpu_check.py --smoke    # seconds, any machine: a toy model on CPU
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# Qwen2-0.5B's shape (hidden 896, 24 blocks, 14 heads over 2 KV heads, SwiGLU 4864, a 151,936
# vocab); "smoke" a toy of the same family.
SHAPES = {
    "0.5B": dict(hidden=896, layers=24, heads=14, kv_heads=2, ffn=4864, vocab=151_936),
    "smoke": dict(hidden=64, layers=2, heads=4, kv_heads=2, ffn=128, vocab=512),
}


def build_qwen2(folder: str, hidden, layers, heads, kv_heads, ffn, vocab) -> int:
    """A random-init sequence classifier of Qwen2's shape and a word-level tokenizer whose
    words are w0, w1, ...: every id of the vocab is reachable."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForSequenceClassification, PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<|endoftext|>", "User", "Assistant", ":"]
    table = {t: i for i, t in enumerate(specials + [f"w{i}" for i in range(vocab - len(specials))])}
    words = Tokenizer(models.WordLevel(table, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=words, pad_token="<pad>", unk_token="<unk>", eos_token="<|endoftext|>"
    )
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=ffn,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=4096,
        num_labels=1,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        tie_word_embeddings=False,
        attention_bias=True,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
    )
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(config)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def make_rows(n: int, words: int, vocab: int, seed: int) -> list[dict]:
    """Pairs whose inputs fill `words` tokens or more (cut to max_length from the prompt's
    start); the chosen response repeats a marker word, so there is something to learn."""
    rng = random.Random(seed)

    def text(k: int) -> str:
        return " ".join(f"w{rng.randrange(vocab - 10)}" for _ in range(k))

    return [
        {
            "prompt": text(words),
            "chosen": "w1 w1 " + text(words // 4),
            "rejected": "w2 w2 " + text(words // 4),
        }
        for _ in range(n)
    ]


def _line(label: str, figures: dict) -> str:
    mfu = figures.get("mfu")
    peaks = figures.get("peak_memory_gb") or []
    return (
        f"{label}: {figures['tokens_per_s']:,.0f} tokens/s, {figures['pairs_per_second']:.1f} "
        f"pairs/s, MFU {'n/a' if mfu is None else f'{mfu:.1%}'}, peak memory per GPU "
        f"{', '.join(f'{gb:.1f} GB' for gb in peaks) or 'n/a'}, "
        f"{figures['trainable_params']:,} of {figures['total_params']:,} parameters trained, "
        # On by default over ~300M parameters on CUDA: its recompute (about a third more
        # compute) is not counted in MFU, so say when it ran.
        f"gradient checkpointing {'on' if figures.get('gradient_checkpointing') else 'off'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a toy model on CPU, in seconds")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=4, help="pairs per GPU and step")
    args = parser.parse_args()

    import torch

    if not args.smoke and not torch.cuda.is_available():
        print("gpu_check needs a CUDA GPU and none is visible (run --smoke for a CPU check).")
        return 2
    from rewardtrain.core.config import TrainConfig
    from rewardtrain.core.launch import train_and_save

    shape = SHAPES["smoke" if args.smoke else "0.5B"]
    steps, seq_len = (3, 64) if args.smoke else (args.steps, args.seq_len)
    device = "cpu" if args.smoke else "cuda"
    gpus = torch.cuda.device_count() if device == "cuda" else 1
    work = tempfile.mkdtemp(prefix="gpu-check-")
    try:
        backbone = os.path.join(work, "backbone")
        params = build_qwen2(backbone, **shape)
        name = torch.cuda.get_device_name() if device == "cuda" else "cpu (smoke)"
        print(
            f"Qwen2-style {params / 1e9:.2f}B random-init reward model, seq len {seq_len}, "
            f"{args.batch_size} pairs per device and step, {steps} steps, bf16; {gpus} x {name}"
        )
        # Inputs of about seq_len tokens: 4/5 prompt, 1/5 response.
        words = seq_len * 4 // 5

        def run(label: str, nproc: int, **settings) -> dict:
            rows = make_rows(steps * args.batch_size * nproc, words, shape["vocab"], seed=1)
            validation = make_rows(2 * nproc, words, shape["vocab"], seed=2)
            cfg = TrainConfig(
                backbone=backbone,
                device=device,
                bf16=device == "cuda",
                max_length=seq_len,
                batch_size=args.batch_size,
                eval_batch_size=args.batch_size,
                epochs=1,
                learning_rate=1e-5,
                warmup_ratio=0.0,
                **settings,
            )
            out = os.path.join(work, label.replace(" ", "-"))
            figures = train_and_save(rows, validation, cfg, out, nproc=nproc)
            shutil.rmtree(out, ignore_errors=True)
            print(_line(label, figures), flush=True)
            return figures

        full = run("full fine-tuning, 1 GPU", 1)
        run("LoRA r=16, 1 GPU", 1, lora_r=16, lora_alpha=32)
        if gpus > 1:
            ddp = run(f"full fine-tuning, DDP over {gpus} GPUs", gpus)
            efficiency = ddp["tokens_per_s"] / (gpus * full["tokens_per_s"])
            print(f"scaling 1 -> {gpus} GPUs: {efficiency:.1%} efficiency")
        else:
            print("scaling: one GPU visible, no DDP run")
        if device == "cuda":
            mfu = full.get("mfu")
            verdict = "met" if mfu is not None and mfu >= 0.40 else "NOT met"
            print(f"target MFU >= 40% for full fine-tuning: {verdict}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
