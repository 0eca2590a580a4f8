"""``DecodingConfig``: the sampling and stopping options every decoding function shares.

One object, filled once (from keyword options by ``from_options``, from a transformers
``GenerationConfig`` by ``pass_ref.hf``) and passed down to the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from .cache import input_device
from .checks import eos_set, make_generator, positive_int
from .sampling import SamplingConfig

StopFn = Callable[[Sequence[int]], bool]  # new tokens so far -> stop now?


@dataclass(frozen=True)
class DecodingConfig:
    """How to sample (``sampling``) and when to stop (``max_new_tokens``, ``eos``, ``stop``)."""

    max_new_tokens: int  # stop after this many new tokens
    sampling: SamplingConfig = field(default_factory=SamplingConfig)  # temperature, top-k, top-p; default greedy
    eos: frozenset[int] = frozenset()  # stop right after generating one of these
    stop: StopFn | None = None  # asked after every committed token: True ends generation there
    generator: torch.Generator | None = None  # the uniforms of sampling and verification (None: torch's global one)
    trace: bool = False  # keep an IterationRecord per iteration

    def __post_init__(self) -> None:
        positive_int("max_new_tokens", self.max_new_tokens, minimum=0)

    @classmethod
    def from_options(cls, model, *, max_new_tokens: int, temperature: float = 0.0, top_k: int | None = None,
                     top_p: float | None = None, eos_token_id=None, stop: StopFn | None = None,
                     generator: torch.Generator | None = None, seed: int | None = None, trace: bool = False) -> "DecodingConfig":
        """The keyword options of the public ``*_generate`` functions.

        Args:
            max_new_tokens: stop after this many new tokens.
            temperature, top_k, top_p: processing of the logits (``SamplingConfig``); 0 = greedy.
            eos_token_id: stop after generating this token (int, list of ints or None).
            stop: optional ``stop(new_tokens) -> bool`` asked after every token (stop strings).
            generator / seed: the randomness (give one or neither; ``seed`` seeds a generator
                on the model's device).
            trace: record every iteration (``GenerationOutput.trace``).
        """
        positive_int("max_new_tokens", max_new_tokens, minimum=0)
        return cls(max_new_tokens, SamplingConfig(temperature, top_k, top_p), eos_set(eos_token_id), stop,
                   make_generator(generator, seed, input_device(model)), trace)
