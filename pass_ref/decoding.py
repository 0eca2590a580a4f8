"""Decoding: one speculative loop shared by every method.

    autoregressive_generate  = the loop with no drafter (0 drafts, 1 call per token)
    pass_generate            = the loop with a LookaheadDrafter (PaSS, Algorithm 1)
        fused=True           = ... with a FusedLookaheadDrafter (one call per iteration)
        prompt_lookup=True   = ... inside a HybridDrafter (copy from the context when possible)
    prompt_lookup_generate   = the loop with a PromptLookupDrafter (Saxena 2023)
    speculative_generate     = the loop with a DraftModelDrafter (Leviathan/Chen et al.)

One iteration (``docs/paper.md``; step numbers follow the paper's Algorithm 1):
  1. drafting: the drafter proposes K drafts with their processed probabilities p_t.
     PaSS's drafting call is a target call that also yields x_{n+1} ~ q, which is
     committed at once (it is exact, not a draft);
  2. validation: one target call on [uncached tokens, x̃_1..x̃_K] gives q_1..q_{K+1};
  3. ``verify_drafts`` accepts a prefix of n drafts and samples the next token from the
     residual (n < K) or q_{K+1} (n = K); the cache is cropped to the accepted prefix;
  4. the new token has no KV yet: it is the first input of the next call.
The paper's pseudo-code increments n inside its loop; here the iteration works from a
fixed base (the sequence before the iteration) and commits tokens at its end.

Cache invariant after every iteration: the target's KV cache holds every token of the
sequence except the last one (whose KV the next call computes).

Batch size is 1: prompts are 1-D. Notation: q = target (see ``pass_ref.verify``).
"""

from __future__ import annotations

import math
import time
from typing import Callable, Sequence

import torch

from .cache import CachedModel, context_length, synchronize
from .drafters import DraftModelDrafter, Drafter, HybridDrafter, LookaheadDrafter, PromptLookupDrafter, check_lookup_args
from .fused import FusedLookaheadDrafter
from .lookahead import LookaheadEmbeddings, check_num_lookahead
from .outputs import ACCEPTED, BONUS, CORRECTED, EXACT, GenerationOutput, GenerationStats, IterationRecord
from .sampling import SamplingConfig, logits_to_probs
from .verify import acceptance_probs, verify_drafts

VerifyFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Generator | None], tuple[int, torch.Tensor]]
StopFn = Callable[[Sequence[int]], bool]  # new tokens so far -> stop now?


def prompt_to_list(input_ids, model) -> list[int]:
    """Validate a batch-1 prompt (list, 1-D tensor or (1, T) tensor) and return its ids."""
    if isinstance(input_ids, torch.Tensor):
        if input_ids.ndim == 2:
            if input_ids.shape[0] != 1:
                raise ValueError(
                    f"pass_ref decodes one sequence at a time (batch size 1); got a batch of "
                    f"{input_ids.shape[0]}. Loop over the prompts instead."
                )
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
    vocab = model.get_input_embeddings().weight.shape[0]
    if min(ids) < 0 or max(ids) >= vocab:
        raise ValueError(f"prompt token ids must be in [0, {vocab}), got one outside")
    limit = context_length(model)
    if limit is not None and len(ids) >= limit:
        raise ValueError(f"the prompt has {len(ids)} tokens but the model's context is {limit}")
    return ids


def _check_budget(prompt_len: int, max_new_tokens, extra: int, model) -> None:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
        raise TypeError(f"max_new_tokens must be an int, got {type(max_new_tokens).__name__}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    limit = context_length(model)
    if limit is not None and prompt_len + max_new_tokens + extra > limit:
        raise ValueError(
            f"prompt ({prompt_len}) + max_new_tokens ({max_new_tokens}) + look-ahead/draft positions "
            f"({extra}) exceed the model's context of {limit}"
        )


def _eos_set(eos_token_id) -> frozenset[int]:
    if eos_token_id is None:
        return frozenset()
    if isinstance(eos_token_id, int) and not isinstance(eos_token_id, bool):
        return frozenset([eos_token_id])
    if isinstance(eos_token_id, (list, tuple, set, frozenset)) and all(isinstance(t, int) for t in eos_token_id):
        return frozenset(eos_token_id)
    raise TypeError(f"eos_token_id must be an int, a list of ints or None, got {eos_token_id!r}")


def _generator(generator: torch.Generator | None, seed: int | None, model) -> torch.Generator | None:
    if generator is not None and seed is not None:
        raise ValueError("pass either generator or seed, not both")
    if seed is None:
        return generator
    g = torch.Generator(device=model.get_input_embeddings().weight.device)
    g.manual_seed(seed)
    return g


class _Sequence:
    """The growing sequence with the stopping rules (max_new_tokens, EOS, ``stop``)."""

    def __init__(self, prompt: list[int], max_new_tokens: int, eos: frozenset[int], stop: StopFn | None = None) -> None:
        self.tokens = list(prompt)
        self.prompt_len = len(prompt)
        self.max_new_tokens = max_new_tokens
        self.eos = eos
        self.stop = stop
        self.sources: list[str] = []
        self.rejected: list[tuple[int, int]] = []
        self.finished = max_new_tokens == 0
        self.flushed = 0  # new tokens already handed to ``on_tokens``

    @property
    def num_new(self) -> int:
        return len(self.tokens) - self.prompt_len

    @property
    def remaining(self) -> int:
        return self.max_new_tokens - self.num_new

    def commit(self, token: int, source: str) -> bool:
        """Append one token; return False (and finish) once no more may follow."""
        self.tokens.append(token)
        self.sources.append(source)
        self.finished = token in self.eos or self.remaining == 0
        if not self.finished and self.stop is not None:
            self.finished = bool(self.stop(self.tokens[self.prompt_len :]))
        return not self.finished

    def flush(self, on_tokens: Callable[[list[int]], None] | None) -> None:
        """Hand the tokens committed since the last flush to ``on_tokens`` (a streamer)."""
        fresh = self.tokens[self.prompt_len + self.flushed :]
        if fresh and on_tokens is not None:
            on_tokens(fresh)
        self.flushed += len(fresh)


def speculative_loop(
    model,
    input_ids,
    drafter: Drafter | None,
    *,
    num_draft_tokens: int,
    max_new_tokens: int,
    sampling: SamplingConfig,
    eos_token_id=None,
    stop: StopFn | None = None,
    generator: torch.Generator | None = None,
    verify_fn: VerifyFn = verify_drafts,
    trace: bool = False,
    fused: bool | None = None,
    on_tokens: Callable[[list[int]], None] | None = None,
) -> GenerationOutput:
    """The shared loop. ``verify_fn`` exists so tests can plug in a wrong rule and see it caught.

    ``stop(new_tokens)`` is asked after every committed token (e.g. ``pass_ref.experiments.humaneval.StopOnStrings``);
    True ends generation right after that token, so every method stops at the same token of
    the same sequence: stopping rules change when a sample ends, never its law.

    ``on_tokens(tokens)`` receives the tokens committed by each iteration, in order, as soon
    as they are final (PaSS's exact token right after the drafting call): a streamer's hook.

    ``fused``: None follows the drafter; True insists on one call per iteration and raises
    ``TypeError`` for a drafter that cannot ride its drafting call along (``pass_ref.fused``).
    """
    start = time.perf_counter()
    prompt = prompt_to_list(input_ids, model)
    is_fused = bool(getattr(drafter, "fused", False))
    if fused and not is_fused:
        raise TypeError(f"fused=True needs a drafter that can fuse (FusedLookaheadDrafter), got {type(drafter).__name__}")
    if fused is False and is_fused:
        raise TypeError(f"{type(drafter).__name__} always fuses; pass fused=True or None")
    exact_drafting = getattr(drafter, "yields_exact_token", False)  # PaSS: the drafting call yields x_{n+1}
    positions_ahead = num_draft_tokens + (drafter.L if is_fused else 0)  # groups reach L places past the drafts
    _check_budget(len(prompt), max_new_tokens, positions_ahead, model)
    seq = _Sequence(prompt, max_new_tokens, _eos_set(eos_token_id), stop)
    target = CachedModel(model)
    stats = GenerationStats()
    records: list[IterationRecord] = []
    with torch.inference_mode():
        while not seq.finished:
            # Drafts beyond what max_new_tokens can use are never made: an iteration yields at
            # most k + 1 tokens (+1 more for PaSS's exact token).
            k = max(0, min(num_draft_tokens, seq.remaining - 1 - int(exact_drafting))) if drafter else 0
            # Step 1: drafting (two-call PaSS: a target call that also yields x_{n+1}).
            draft = drafter.draft(target, seq.tokens, k, sampling, generator) if drafter else None
            exact = None
            if draft is not None and draft.exact is not None:
                exact = int(draft.exact)
                going = seq.commit(exact, EXACT)
                seq.flush(on_tokens)
                if not going:
                    stats.iterations += 1
                    break
            draft_ids = draft.tokens.tolist() if draft is not None else []
            K = len(draft_ids)  # the drafter may propose fewer than k (prompt lookup, fused)
            # Step 2: validation call on the uncached tokens followed by the drafts. A fused
            # drafter appends its look-ahead groups: the next iteration's drafting call.
            pending = seq.tokens[target.length :]
            if is_fused:
                logits = drafter.validation_call(target, pending, draft_ids)  # (K+1, V)
            else:
                logits = target.forward(pending + draft_ids, keep=K + 1)  # (K+1, V)
            q = logits_to_probs(logits, sampling)  # (K+1, V)
            # Drafts follow the logits' device (the LM head's, on a model spread over devices).
            draft_probs = draft.probs.to(q.device, q.dtype) if draft is not None else q.new_empty(0, q.shape[-1])  # (K, V)
            draft_tokens = draft.tokens.to(q.device) if draft is not None else torch.empty(0, dtype=torch.long, device=q.device)
            if draft_probs.shape[-1] != q.shape[-1]:
                raise ValueError(f"draft vocabulary ({draft_probs.shape[-1]}) differs from the target's ({q.shape[-1]})")
            # Step 3: accept / reject, then crop the rejected drafts' KV.
            n, next_token = verify_fn(q, draft_probs, draft_tokens, generator)
            target.rollback(len(seq.tokens) + n)
            if is_fused:
                drafter.accepted(n, len(seq.tokens) + n + 1)  # G_n's rows draft after the next token
            stats.record_block(K, n)
            stats.iterations += 1
            going = all(seq.commit(t, ACCEPTED) for t in draft_ids[:n])
            if going:
                if n < K:
                    seq.rejected.append((seq.num_new, draft_ids[n]))
                seq.commit(int(next_token), CORRECTED if n < K else (BONUS if K > 0 else EXACT))
            seq.flush(on_tokens)
            if not seq.finished and target.length != len(seq.tokens) - 1:
                raise RuntimeError("cache invariant broken: the cache must hold all but the last token")
            if trace:
                records.append(
                    IterationRecord(
                        exact_token=exact,
                        draft_tokens=draft_ids,
                        accept_probs=acceptance_probs(q, draft_probs, draft_tokens).tolist() if K else [],
                        num_accepted=n,
                        next_token=int(next_token),
                        cache_length=target.length,
                        sequence_length=len(seq.tokens),
                    )
                )
    device = target.device
    synchronize(device)
    stats.model_calls = target.calls
    stats.call_sizes = list(target.call_sizes)
    stats.draft_model_calls = drafter.model_calls if drafter else 0
    stats.new_tokens = seq.num_new
    stats.wall_time_s = time.perf_counter() - start
    stats.forward_time_s = target.forward_time_s if device.type == "cpu" else math.nan
    if isinstance(drafter, DraftModelDrafter) and device.type == "cpu":
        stats.forward_time_s += drafter.cached.forward_time_s
    all_ids = torch.tensor(seq.tokens, dtype=torch.long)
    return GenerationOutput(
        new_tokens=all_ids[len(prompt) :],
        sequences=all_ids,
        stats=stats,
        sources=seq.sources,
        rejected=seq.rejected,
        trace=records if trace else None,
    )


def _generate(model, input_ids, drafter, num_draft_tokens, max_new_tokens, temperature, top_k, top_p, eos_token_id, generator, seed, trace, stop=None):
    """Shared tail of the public functions: build the sampling config and generator, run the loop."""
    return speculative_loop(
        model,
        input_ids,
        drafter,
        num_draft_tokens=num_draft_tokens,
        max_new_tokens=max_new_tokens,
        sampling=SamplingConfig(temperature, top_k, top_p),
        eos_token_id=eos_token_id,
        stop=stop,
        generator=_generator(generator, seed, model),
        trace=trace,
    )


def autoregressive_generate(
    model,
    input_ids,
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_token_id=None,
    stop: StopFn | None = None,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    trace: bool = False,
) -> GenerationOutput:
    """Plain decoding with a KV cache: one model call per token (the baseline).

    Args:
        model: a Hugging Face causal LM.
        input_ids: the prompt, 1-D or (1, T) (batch size 1).
        max_new_tokens: stop after this many new tokens.
        temperature, top_k, top_p: processing of the logits (``SamplingConfig``); 0 = greedy.
        eos_token_id: stop after generating this token (int, list of ints or None).
        stop: optional ``stop(new_tokens) -> bool`` asked after every token (stop strings).
        generator / seed: the randomness (give one or neither).
    """
    return _generate(model, input_ids, None, 0, max_new_tokens, temperature, top_k, top_p, eos_token_id, generator, seed, trace, stop)


def pass_generate(
    model,
    lookahead: LookaheadEmbeddings,
    input_ids,
    *,
    max_new_tokens: int,
    num_lookahead: int | None = None,
    fused: bool = False,
    groups=None,
    prompt_lookup: bool = False,
    lookup_tokens: int | None = None,
    max_ngram: int = 3,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_token_id=None,
    stop: StopFn | None = None,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    trace: bool = False,
) -> GenerationOutput:
    """PaSS: parallel speculative sampling with look-ahead embeddings (Algorithm 1).

    Two target calls per iteration (drafting, validation), each iteration yielding 2 to
    L + 2 tokens; the output law is exactly the target's. ``num_lookahead`` uses only
    the first k <= L vectors (by causality they draft as they do inside the full set).

    Beyond the paper (each exact, see ``docs/architecture.md``):
        fused: one call per iteration, the next drafting call riding along with the
            validation call as look-ahead groups (``pass_ref.fused``); 1 to L + 1 tokens a call.
        groups: with ``fused``, the numbers of accepted drafts that get a group (None: every
            a <= L). Fewer groups make cheaper calls: (0, 1) covers most iterations of the
            shipped sets, (0,) suits the hybrid.
        prompt_lookup: draft by copying from the context when the last n-gram (up to
            ``max_ngram`` tokens) occurred before, up to ``lookup_tokens`` drafts (default
            max(L, 4)); by look-ahead embeddings otherwise.
    Other arguments as in ``autoregressive_generate``.
    """
    drafter, K = pass_drafter(model, lookahead, num_lookahead, fused=fused, groups=groups, prompt_lookup=prompt_lookup,
                              lookup_tokens=lookup_tokens, max_ngram=max_ngram)
    return _generate(model, input_ids, drafter, K, max_new_tokens, temperature, top_k, top_p, eos_token_id, generator, seed, trace, stop)


def pass_drafter(model, lookahead: LookaheadEmbeddings, num_lookahead: int | None = None, *, fused: bool = False, groups=None,
                 prompt_lookup: bool = False, lookup_tokens: int | None = None, max_ngram: int = 3) -> tuple[Drafter, int]:
    """The drafter of ``pass_generate`` and the number of drafts K it may propose.

    Shared by ``pass_generate`` and the ``generate(custom_generate=...)`` route
    (``pass_ref.hf``), so both run the same PaSS. Arguments as in ``pass_generate``.
    """
    if not isinstance(lookahead, LookaheadEmbeddings):
        raise TypeError(f"lookahead must be LookaheadEmbeddings, got {type(lookahead).__name__}")
    L = lookahead.num_lookahead if num_lookahead is None else num_lookahead
    check_num_lookahead(L)
    if L > lookahead.num_lookahead:
        raise ValueError(f"num_lookahead={L} but only {lookahead.num_lookahead} look-ahead embeddings exist")
    if groups is not None and not fused:
        raise ValueError("groups only apply to fused=True")
    drafter = FusedLookaheadDrafter(model, lookahead, L, groups) if fused else LookaheadDrafter(model, lookahead, L)
    if not prompt_lookup:
        if lookup_tokens is not None:
            raise ValueError("lookup_tokens only applies to prompt_lookup=True")
        return drafter, L
    lookup_tokens = max(L, 4) if lookup_tokens is None else lookup_tokens
    check_lookup_args(lookup_tokens, max_ngram, "lookup_tokens")
    return HybridDrafter(PromptLookupDrafter(max_ngram), drafter, lookup_tokens), max(L, lookup_tokens)


def prompt_lookup_generate(
    model,
    input_ids,
    *,
    num_draft_tokens: int,
    max_new_tokens: int,
    max_ngram: int = 3,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_token_id=None,
    stop: StopFn | None = None,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    trace: bool = False,
) -> GenerationOutput:
    """Prompt lookup decoding (Saxena 2023): drafts copied from the context, verified exactly.

    Each iteration looks for the latest earlier occurrence of the last n-gram
    (n = ``max_ngram`` .. 1) and proposes the ``num_draft_tokens`` tokens that followed
    it; without a match the iteration is one plain call. A copied draft has a one-hot
    draft distribution, so under sampling it is accepted with probability q(x̃).
    Other arguments as in ``autoregressive_generate``.
    """
    check_lookup_args(num_draft_tokens, max_ngram)
    drafter = PromptLookupDrafter(max_ngram)
    return _generate(model, input_ids, drafter, num_draft_tokens, max_new_tokens, temperature, top_k, top_p, eos_token_id, generator, seed, trace, stop)


def speculative_generate(
    model,
    draft_model,
    input_ids,
    *,
    num_draft_tokens: int,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_token_id=None,
    stop: StopFn | None = None,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    trace: bool = False,
) -> GenerationOutput:
    """Classic speculative sampling with a draft model sharing the tokenizer.

    The draft model proposes ``num_draft_tokens`` tokens autoregressively; one target call
    verifies them. See ``pass_ref.models.truncated_draft_model`` for a draft model made
    from the target's first layers. Other arguments as in ``autoregressive_generate``.
    """
    if isinstance(num_draft_tokens, bool) or not isinstance(num_draft_tokens, int):
        raise TypeError(f"num_draft_tokens must be an int, got {type(num_draft_tokens).__name__}")
    if num_draft_tokens < 1:
        raise ValueError(f"num_draft_tokens must be >= 1, got {num_draft_tokens}")
    target_vocab = model.get_input_embeddings().weight.shape[0]
    draft_vocab = draft_model.get_input_embeddings().weight.shape[0]
    if target_vocab != draft_vocab:
        raise ValueError(f"the draft model's vocabulary ({draft_vocab}) differs from the target's ({target_vocab})")
    return _generate(model, input_ids, DraftModelDrafter(draft_model), num_draft_tokens, max_new_tokens, temperature, top_k, top_p, eos_token_id, generator, seed, trace, stop)
