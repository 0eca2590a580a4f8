"""Self-distilled training data: the model's own continuations of the training prompts.

Acceptance measures agreement with the *model*, not with the corpus (``docs/paper.md``: a draft
is kept with probability min(1, q/p)). So instead of ground-truth text, the look-ahead
vectors can be trained on what the frozen model itself writes after a training prompt:
greedy continuations match greedy decoding, sampled ones (T = 0.8, top-k 10, the paper's
default) match sampling. Generation is batched (all prompts have the same length, so no
padding) and seeded with an explicit generator.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache

from ..sampling import SamplingConfig, logits_to_probs, sample

MODES = {
    "self-greedy": (SamplingConfig(0.0),),
    "self-sampled": (SamplingConfig(0.8, top_k=10),),
    "self-mixed": (SamplingConfig(0.0), SamplingConfig(0.8, top_k=10)),  # alternate rows
}


@torch.no_grad()
def continue_windows(
    model,
    windows: torch.Tensor,
    *,
    prompt_len: int = 32,
    sampling: SamplingConfig = SamplingConfig(0.0),
    batch_size: int = 16,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Keep each window's first ``prompt_len`` tokens and let the model write the rest.

    Args:
        windows: (N, T) token ids; T > prompt_len.
    Returns:
        (N, T) ids on the CPU: the prompts followed by T - prompt_len generated tokens (EOS
        does not stop generation, as in the benchmark).
    """
    if windows.ndim != 2 or windows.shape[0] < 1:
        raise ValueError("windows must be a non-empty (N, T) tensor of token ids")
    N, T = windows.shape
    if not 1 <= prompt_len < T:
        raise ValueError(f"prompt_len must be in 1..{T - 1}, got {prompt_len}")
    device = model.get_input_embeddings().weight.device
    out = windows.clone().cpu()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=N, desc=f"self-distilling (T={sampling.temperature:g})", unit="window")
    for start in range(0, N, batch_size):
        prompts = windows[start : start + batch_size, :prompt_len].to(device)  # (B, P)
        cache = DynamicCache(config=model.config)
        logits = model(input_ids=prompts, cache=cache, use_cache=True).logits[:, -1]  # (B, V)
        generated = []
        for t in range(T - prompt_len):
            token = sample(logits_to_probs(logits, sampling), generator)  # (B,)
            generated.append(token)
            if t < T - prompt_len - 1:
                logits = model(input_ids=token[:, None], cache=cache, use_cache=True).logits[:, -1]
        out[start : start + prompts.shape[0], prompt_len:] = torch.stack(generated, dim=1).cpu()
        if bar is not None:
            bar.update(prompts.shape[0])
    if bar is not None:
        bar.close()
    return out


def self_distilled_windows(
    model,
    windows: torch.Tensor,
    mode: str,
    *,
    num_windows: int,
    prompt_len: int = 32,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = True,
) -> torch.Tensor:
    """``num_windows`` seeded rows of ``windows`` continued by the model (``MODES[mode]``).

    "self-mixed" alternates greedy and sampled continuations row by row.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
    if num_windows < 1:
        raise ValueError(f"num_windows must be >= 1, got {num_windows}")
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randperm(windows.shape[0], generator=generator)[:num_windows]
    chosen = windows[rows]
    configs = MODES[mode]
    sample_gen = torch.Generator(device=model.get_input_embeddings().weight.device).manual_seed(seed + 1)
    parts = []
    for j, config in enumerate(configs):
        part = chosen[j :: len(configs)]
        parts.append(
            continue_windows(
                model, part, prompt_len=prompt_len, sampling=config, batch_size=batch_size, generator=sample_gen, progress=progress
            )
        )
    out = torch.empty_like(chosen)
    for j, part in enumerate(parts):
        out[j :: len(configs)] = part
    return out
