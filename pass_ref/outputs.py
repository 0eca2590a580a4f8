"""Outputs are data: what a generation returns and the counts it records.

Printing, highlighting and plots live in ``pass_ref.viz`` and take these objects. The
core holds no clock: timings are taken from outside (``pass_ref.experiments.timing``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

# Where each generated token came from (``GenerationOutput.sources``):
EXACT = "exact"  # sampled directly from the target q (autoregressive step, PaSS's x_{n+1})
ACCEPTED = "accepted"  # a draft token that passed verification
CORRECTED = "corrected"  # sampled from the residual after a draft was rejected
BONUS = "bonus"  # sampled from q after every draft of the block was accepted


@dataclass
class IterationRecord:
    """One iteration of the speculative loop (kept when ``trace=True``)."""

    exact_token: int | None  # PaSS's x_{n+1}; None for other methods
    draft_tokens: list[int]  # x̃_1..x̃_K
    accept_probs: list[float]  # min(1, q/p) for each draft
    num_accepted: int  # n
    next_token: int  # residual or bonus sample
    cache_length: int  # KV positions after the iteration's crop
    sequence_length: int  # prompt + generated tokens after the iteration


@dataclass
class GenerationStats:
    """Counters of one generation. Acceptance per draft position i = accepted[i] / drafted[i]."""

    model_calls: int = 0  # forward passes of the target model
    draft_model_calls: int = 0  # forward passes of a separate draft model (0 for PaSS)
    iterations: int = 0  # loop iterations (prefill included for autoregressive)
    drafted: list[int] = field(default_factory=list)  # per position i: blocks with a draft at i
    accepted: list[int] = field(default_factory=list)  # per position i: blocks whose drafts 1..i were all accepted
    new_tokens: int = 0
    call_sizes: list[int] = field(default_factory=list)  # inputs of each target call (prefill first)

    @property
    def tokens_per_call(self) -> float:
        """Generated tokens per target-model call (autoregressive: 1.0)."""
        return self.new_tokens / max(self.model_calls, 1)

    @property
    def calls_per_token(self) -> float:
        return self.model_calls / max(self.new_tokens, 1)

    @property
    def acceptance_rates(self) -> list[float]:
        """alpha_i = P(a >= i): among blocks with a draft at position i, the fraction whose first
        i drafts were all accepted. Non-increasing only when every block has the same
        length (blocks cut short near ``max_new_tokens`` or by prompt lookup vary)."""
        return [a / d if d else float("nan") for a, d in zip(self.accepted, self.drafted)]

    def record_block(self, k: int, a: int) -> None:
        """Count one verified block of k drafts of which the first a were accepted."""
        while len(self.drafted) < k:
            self.drafted.append(0)
            self.accepted.append(0)
        for i in range(k):
            self.drafted[i] += 1
            self.accepted[i] += int(i < a)


@dataclass
class GenerationOutput:
    """What every decoding function returns (batch size 1)."""

    new_tokens: torch.Tensor  # (N,) generated ids
    sequences: torch.Tensor  # (T + N,) prompt followed by generated ids
    stats: GenerationStats
    sources: list[str]  # (N,) EXACT / ACCEPTED / CORRECTED / BONUS for each new token
    rejected: list[tuple[int, int]] = field(default_factory=list)  # (index in new_tokens it would have had, draft id)
    trace: list[IterationRecord] | None = None
