"""Drafters: who proposes the tokens that verification checks.

One interface, several implementations (one loop, many drafters):

- ``LookaheadDrafter`` (PaSS, Algorithm 1 step 1): one *target-model* call on the
  uncached tokens followed by ``[LA]_1..[LA]_k``. Its output at the last real position
  is the exact next-token distribution q, so it also yields x_{n+1} ~ q, which is kept
  unconditionally (``Draft.exact``; it is *not* part of the draft). Its outputs at the
  look-ahead positions are p_LA,i, from which the drafts x̃_i are sampled. The same
  drafter with untrained UNK-initialised vectors is the paper's "[UNK] look-ahead"
  baseline.
- ``DraftModelDrafter`` (Leviathan et al. 2023; Chen et al. 2023): a second model with
  the same tokenizer drafts k tokens autoregressively with its own KV cache.
- ``PromptLookupDrafter`` (Saxena 2023, "prompt lookup decoding"): copies the tokens
  that followed the latest earlier occurrence of the sequence's last n-gram. No model
  call; the draft distribution is one-hot on the copied token, which the rule handles
  exactly (accept with probability q(x̃), resample from q without x̃ otherwise).
- ``HybridDrafter``: prompt lookup when the n-gram matches, another drafter otherwise.
- ``pass_ref.fused.FusedLookaheadDrafter``: PaSS with one call per iteration.

Autoregressive decoding is the loop with no drafter.

A drafter returns the *processed* probabilities its drafts were sampled from; the
verifier needs exactly those (``docs/paper.md``, "Exactness").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import torch

from .cache import CachedModel
from .lookahead import LookaheadEmbeddings
from .sampling import SamplingConfig, logits_to_probs, sample


@dataclass
class Draft:
    """What a drafter proposes for one iteration."""

    tokens: torch.Tensor  # (K,) int64 draft tokens x̃_1..x̃_K
    probs: torch.Tensor  # (K, V) processed distributions they were sampled from
    exact: torch.Tensor | None = None  # 0-d: PaSS's x_{n+1} ~ q, kept whatever happens


def empty_draft(target: CachedModel) -> Draft:
    """No drafts this iteration: the loop then makes one plain call (one exact token)."""
    V = target.model.get_input_embeddings().weight.shape[0]
    return Draft(tokens=torch.empty(0, dtype=torch.long, device=target.device), probs=torch.zeros(0, V, device=target.device))


class Drafter(Protocol):
    """Proposes up to ``k`` draft tokens after ``sequence`` (fewer, even none, is allowed)."""

    yields_exact_token: bool  # True if ``draft`` also returns an exact sample from q

    def draft(
        self, target: CachedModel, sequence: Sequence[int], k: int, sampling: SamplingConfig, generator: torch.Generator | None
    ) -> Draft: ...

    @property
    def model_calls(self) -> int: ...


class LookaheadDrafter:
    """PaSS drafting call: the target itself reads ``[LA]_1..[LA]_k`` (Algorithm 1, step 1)."""

    yields_exact_token = True  # row 0 of its call is q itself: x_{n+1} is committed, not verified

    def __init__(self, model, lookahead: LookaheadEmbeddings, num_lookahead: int | None = None) -> None:
        lookahead.check_compatible(model)
        self.model = model
        self.lookahead = lookahead
        self.L = lookahead.num_lookahead if num_lookahead is None else num_lookahead  # drafts at most L tokens
        self.vectors = lookahead.drafting_inputs(model, self.L)  # (L, D)

    @property
    def model_calls(self) -> int:
        return 0  # its calls are target calls, counted by the target's cache

    def draft(self, target, sequence, k, sampling, generator) -> Draft:
        pending = sequence[target.length :]  # real tokens without KV (>= 1)
        k = min(k, self.L)
        # 1. One forward pass over [pending..., LA_1..LA_k]; the LA positions' KV is
        #    cropped inside CachedModel.forward right after the call.
        #    Deep look-ahead vectors (if any) are added inside the layers at the k LA positions.
        logits = drafting_call(target, self.lookahead, self.vectors[:k], pending)  # (k+1, V)
        # 2. Row 0 is q(. | x_1..x_n): the exact next token. Rows 1..k are p_LA,1..p_LA,k.
        probs = logits_to_probs(logits, sampling)  # (k+1, V)
        tokens = sample(probs, generator)  # (k+1,)
        return Draft(tokens=tokens[1:], probs=probs[1:], exact=tokens[0])


def drafting_call(target: CachedModel, lookahead: LookaheadEmbeddings, vectors: torch.Tensor, pending: Sequence[int]) -> torch.Tensor:
    """Algorithm 1, step 1: one target call on ``pending`` followed by [LA]_1..[LA]_k.

    Args:
        target: the model with its cache (the cache holds everything before ``pending``).
        lookahead: the set (its deep vectors, if any, are added inside the layers).
        vectors: (k, D) the first k look-ahead inputs (``lookahead.drafting_inputs``).
        pending: real tokens without KV yet (>= 1).
    Returns:
        (k + 1, V) logits: row 0 is q(. | x_1..x_n), rows 1..k are p_LA,1..p_LA,k. The
        look-ahead positions' KV is cropped inside the call.
    """
    k = vectors.shape[0]
    with lookahead.applied(target.model, torch.arange(k)):
        return target.forward(pending, extra_embeds=vectors, keep=k + 1)  # (k+1, V)


def lookahead_logits(model, lookahead: LookaheadEmbeddings, input_ids, num_lookahead: int | None = None) -> torch.Tensor:
    """The (L + 1, V) logits of one PaSS drafting call after ``input_ids`` (row 0 = q, rows 1..L = p_LA).

    The one way to look at what a look-ahead set drafts: ``LookaheadDrafter``, the
    evaluation, the training's held-out metrics and the notebooks all go through
    ``drafting_call``, so deep look-ahead hooks cannot be skipped.
    """
    from .decoding import prompt_to_list

    lookahead.check_compatible(model)
    L = lookahead.num_lookahead if num_lookahead is None else num_lookahead
    ids = prompt_to_list(input_ids, model)
    target = CachedModel(model)
    with torch.inference_mode():
        return drafting_call(target, lookahead, lookahead.drafting_inputs(model, L), ids)


class DraftModelDrafter:
    """Classic speculative sampling: a smaller model drafts k tokens one at a time."""

    yields_exact_token = False

    def __init__(self, draft_model) -> None:
        self.cached = CachedModel(draft_model)

    @property
    def model_calls(self) -> int:
        return self.cached.calls

    def draft(self, target, sequence, k, sampling, generator) -> Draft:
        feed = self.cached.sync(sequence)  # reuse the draft cache up to the common prefix
        tokens, probs = [], []
        for _ in range(k):
            p = logits_to_probs(self.cached.forward(feed, keep=1)[-1], sampling)  # (V,)
            x = sample(p, generator)
            tokens.append(x)
            probs.append(p)
            feed = [int(x)]
        if not tokens:
            return empty_draft(target)
        return Draft(tokens=torch.stack(tokens), probs=torch.stack(probs))


def check_lookup_args(num_draft_tokens, max_ngram, name: str = "num_draft_tokens") -> None:
    """Both must be positive ints (``name``: what the caller calls the number of drafts)."""
    for name, value in ((name, num_draft_tokens), ("max_ngram", max_ngram)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def find_continuation(sequence: Sequence[int], k: int, max_ngram: int) -> list[int]:
    """Up to k tokens that followed an earlier occurrence of the sequence's last n-gram.

    Tries n = max_ngram .. 1 and stops at the first n that occurs earlier (a longer
    n-gram is better evidence). Among its occurrences it takes the latest one that is
    followed by k tokens, else the one followed by the most: on HumanEval completions
    this drafts more accepted tokens per call than the latest or the earliest occurrence.
    """
    length = len(sequence)
    for n in range(min(max_ngram, length - 1), 0, -1):
        tail = list(sequence[length - n :])
        first = tail[0]
        best: list[int] = []
        for start in range(length - n - 1, -1, -1):  # latest first; start + n < length
            if sequence[start] == first and list(sequence[start : start + n]) == tail:
                follow = list(sequence[start + n : start + n + k])
                if len(follow) > len(best):
                    best = follow
                if len(best) == k:
                    break
        if best:
            return best
    return []


class PromptLookupDrafter:
    """Drafts copied from the context (prompt lookup decoding); no model call."""

    yields_exact_token = False

    def __init__(self, max_ngram: int = 3) -> None:
        check_lookup_args(1, max_ngram)
        self.max_ngram = max_ngram

    @property
    def model_calls(self) -> int:
        return 0

    def draft(self, target, sequence, k, sampling, generator) -> Draft:
        copied = find_continuation(sequence, k, self.max_ngram) if k > 0 else []
        if not copied:
            return empty_draft(target)
        V = target.model.get_input_embeddings().weight.shape[0]
        tokens = torch.tensor(copied, dtype=torch.long, device=target.device)  # (K,)
        probs = torch.nn.functional.one_hot(tokens, V).float()  # (K, V): a copied token is certain
        return Draft(tokens=tokens, probs=probs)


class HybridDrafter:
    """Prompt lookup when the last n-gram occurred before, ``fallback`` otherwise.

    With a fused fallback, the look-ahead groups ride along in every call
    (``ride_along="always"``, the default: look-ahead drafts are then ready whenever the
    next lookup finds nothing) or only in calls whose drafts were not copied (``"miss"``:
    cheaper calls, but a miss right after a hit has no drafts). On HumanEval prompts
    "always" made more tokens per call (``docs/RESULTS.md``).
    """

    def __init__(self, lookup: PromptLookupDrafter, fallback, lookup_tokens: int, ride_along: str = "always") -> None:
        check_lookup_args(lookup_tokens, lookup.max_ngram, "lookup_tokens")
        if ride_along not in ("miss", "always"):
            raise ValueError(f"ride_along must be 'miss' or 'always', got {ride_along!r}")
        self.lookup = lookup
        self.fallback = fallback
        self.lookup_tokens = lookup_tokens
        self.ride_along = ride_along
        self.yields_exact_token = fallback.yields_exact_token
        self.fused = getattr(fallback, "fused", False)
        self.L = fallback.L
        self.copied = False  # did this iteration's drafts come from lookup?
        if self.fused:
            self.accepted = fallback.accepted

    def validation_call(self, target, pending, draft_ids):
        """The fused fallback's call, with groups unless these drafts were copied (``ride_along``)."""
        with_groups = self.ride_along == "always" or not self.copied
        return self.fallback.validation_call(target, pending, draft_ids, with_groups=with_groups)

    @property
    def model_calls(self) -> int:
        return self.fallback.model_calls

    def draft(self, target, sequence, k, sampling, generator) -> Draft:
        copied = self.lookup.draft(target, sequence, min(k, self.lookup_tokens), sampling, generator)
        self.copied = copied.tokens.shape[0] > 0
        if self.copied:
            return copied
        return self.fallback.draft(target, sequence, k, sampling, generator)
