"""Argument checks in one place, with the same clear messages everywhere.

Every public entry point validates its input here before any model call, so bad input
raises ``TypeError`` / ``ValueError`` naming the argument, never a wrong answer.
"""

from __future__ import annotations

import torch


def positive_int(name: str, value, *, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum`` (bools and floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_L(L) -> int:
    """L, the number of look-ahead embeddings, is a positive int."""
    return positive_int("the number of look-ahead tokens L", L)


def vocab_size(model) -> int:
    """Rows of the input embedding (the vocabulary every distribution is over)."""
    return model.get_input_embeddings().weight.shape[0]


def context_length(model) -> int | None:
    """The model's maximum number of positions, if its config states one (or its static cache's length)."""
    static = getattr(model, "pass_ref_static", None)  # pass_ref.static: a preallocated cache is the limit
    return getattr(model.config, "max_position_embeddings", None) if static is None else static.max_cache_len


def context_name(model) -> str:
    """How errors name the limit ``context_length`` returns."""
    return "the model's context" if getattr(model, "pass_ref_static", None) is None else "the static cache's max_cache_len"


def prompt_ids(input_ids, model) -> list[int]:
    """Validate a batch-1 prompt (list, 1-D tensor or (1, T) tensor) and return its ids."""
    if isinstance(input_ids, torch.Tensor):
        if input_ids.ndim == 2:
            if input_ids.shape[0] != 1:
                raise ValueError(f"pass_ref decodes one sequence at a time (batch size 1); got a batch of "
                                 f"{input_ids.shape[0]}. Loop over the prompts instead.")
            input_ids = input_ids[0]
        elif input_ids.ndim != 1:
            raise ValueError(f"input_ids must be 1-D or (1, T), got shape {tuple(input_ids.shape)}")
        if input_ids.is_floating_point():
            raise TypeError("input_ids must hold integer token ids")
        ids = input_ids.tolist()
    elif isinstance(input_ids, (list, tuple)):
        if input_ids and isinstance(input_ids[0], (list, tuple)):
            if len(input_ids) != 1:
                raise ValueError(f"pass_ref decodes one sequence at a time (batch size 1); got a batch of {len(input_ids)}")
            input_ids = input_ids[0]
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in input_ids):
            raise TypeError("input_ids must hold integer token ids")
        ids = list(input_ids)
    else:
        raise TypeError(f"input_ids must be a tensor or a list of ints, got {type(input_ids).__name__}")
    if not ids:
        raise ValueError("the prompt is empty: give at least one token")
    if min(ids) < 0 or max(ids) >= vocab_size(model):
        raise ValueError(f"prompt token ids must be in [0, {vocab_size(model)}), got one outside")
    limit = context_length(model)
    if limit is not None and len(ids) >= limit:
        raise ValueError(f"the prompt has {len(ids)} tokens but the model's context is {limit}")
    return ids


def check_budget(prompt_len: int, max_new_tokens: int, positions_ahead: int, model) -> None:
    """The prompt, the new tokens and the positions a call reaches past them fit the context."""
    limit = context_length(model)
    if limit is not None and prompt_len + max_new_tokens + positions_ahead > limit:
        raise ValueError(f"prompt ({prompt_len}) + max_new_tokens ({max_new_tokens}) + look-ahead/draft positions "
                         f"({positions_ahead}) exceed {context_name(model)} of {limit}")


def eos_set(eos_token_id) -> frozenset[int]:
    """``eos_token_id`` (None, an int or a list of ints) as a set."""
    if eos_token_id is None:
        return frozenset()
    if isinstance(eos_token_id, int) and not isinstance(eos_token_id, bool):
        return frozenset([eos_token_id])
    if isinstance(eos_token_id, (list, tuple, set, frozenset)) and all(isinstance(t, int) for t in eos_token_id):
        return frozenset(eos_token_id)
    raise TypeError(f"eos_token_id must be an int, a list of ints or None, got {eos_token_id!r}")


def make_generator(generator: torch.Generator | None, seed: int | None, device) -> torch.Generator | None:
    """The run's randomness: ``generator`` as given, or a new one seeded with ``seed`` on ``device``."""
    if generator is not None and seed is not None:
        raise ValueError("pass either generator or seed, not both")
    if seed is None:
        return generator
    return torch.Generator(device=device).manual_seed(seed)


def check_sampling_args(temperature, top_k, top_p) -> None:
    """Raise a clear error for sampling settings that have no meaning."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise TypeError(f"temperature must be a number, got {type(temperature).__name__}")
    if not temperature >= 0.0:  # also catches NaN
        raise ValueError(f"temperature must be >= 0 (0 means greedy), got {temperature}")
    if top_k is not None:
        positive_int("top_k", top_k)
    if top_p is not None:
        if isinstance(top_p, bool) or not isinstance(top_p, (int, float)):
            raise TypeError(f"top_p must be a number or None, got {type(top_p).__name__}")
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")


def check_same_vocabulary(draft_model, model) -> None:
    """A draft model must share the target's vocabulary to be verified against it."""
    if vocab_size(draft_model) != vocab_size(model):
        raise ValueError(f"the draft model's vocabulary ({vocab_size(draft_model)}) differs from the target's ({vocab_size(model)})")
