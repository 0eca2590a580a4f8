"""The latency model: forward-pass cost t(n) and the speed-ups it predicts.

Decoding time is dominated by forward passes. With t(n) the latency of one forward pass
over n new tokens on top of a KV cache of realistic length, every method's speed-up over
autoregressive decoding (one token per t(1)) follows from its tokens per iteration and
the calls an iteration makes (``docs/paper.md``; ``pass_ref.course.theory``):

    PaSS, L look-ahead tokens:      (2 + E[a]) / (2 t(L + 1))          against 1 / t(1)
    one-call PaSS, G groups:        (1 + E[a]) / t(1 + L + G L)         (when every n has a group)
    draft model, k drafts:          (1 + E[a]) / (t(k + 1) + k t_d(1))  against 1 / t(1)
    prompt lookup, k candidates:    (1 + E[a]) / t(k + 1)               against 1 / t(1)

E[a] = alpha_1 + ... + alpha_k with alpha_i the measured acceptance per position. t(n) is a property
of the hardware, the model's shape and the dtype, not of the weights' values, so it can
be measured with random weights; acceptance is a property of the weights, not of the
hardware. Measuring both separately is what transfers a CPU result to a GPU.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Sequence

import torch
from transformers import DynamicCache

from ..cache import input_device
from .timing import synchronize


@dataclass
class LatencyCurve:
    """Median seconds of one forward pass over n new tokens, after ``context`` cached tokens."""

    new_tokens: list[int]  # n values, ascending
    seconds: list[float]  # median latency for each n
    context: int  # KV-cache length the passes ran on
    repeats: int
    device: str
    dtype: str
    model: str
    samples: list[list[float]] = field(default_factory=list)  # every timing, per n
    padded: bool = False  # a static path's curve: a call of n inputs costs t(smallest measured size >= n)

    def t(self, n: int) -> float:
        """Median latency of a pass over ``n`` new tokens (must have been measured)."""
        try:
            return self.seconds[self.new_tokens.index(n)]
        except ValueError:
            raise KeyError(f"t({n}) was not measured; measured n: {self.new_tokens}") from None

    def ratio(self, n: int) -> float:
        """t(n) / t(1): how much a pass over n tokens costs relative to one token."""
        return self.t(n) / self.t(1)

    def at(self, n: float) -> float:
        """t(n) for any n >= 1: measured, linearly interpolated, or extrapolated from the last two points.

        A ``padded`` curve (the compiled static path) instead returns the cost of the size the
        call is padded to; a call larger than every size is extrapolated as above.
        """
        xs, ys = self.new_tokens, self.seconds
        if n <= xs[0]:
            return ys[0]
        if self.padded and n <= xs[-1]:
            return next(y for x, y in zip(xs, ys) if x >= n)
        for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
            if n <= x1:
                return y0 + (y1 - y0) * (n - x0) / (x1 - x0)
        if len(xs) == 1:
            return ys[0]
        slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        return ys[-1] + max(slope, 0.0) * (n - xs[-1])

    def interpolated(self, sizes: Sequence[int]) -> "LatencyCurve":
        """An unpadded curve measured at ``sizes``: the measured t(n) where it has one, else linear between its neighbours.

        The question it answers for a compiled curve: what would t(n) be had n been compiled too?
        Measured here on the Xeon without BF16, compiled bfloat16 t(1..5) rose nearly linearly
        (SmolLM2 26.9, 32.2, 38.0, 41.5, 46.9 ms) or below the line (Qwen 0.5B t(3) 81.4 ms, the line 87.4).
        """
        ns = sorted(set(self.new_tokens) | {int(n) for n in sizes})
        if ns[0] < 1:
            raise ValueError(f"sizes must be >= 1, got {sorted(sizes)}")
        line = LatencyCurve(**{**asdict(self), "padded": False, "samples": []})
        return LatencyCurve(ns, [line.at(n) for n in ns], self.context, self.repeats, self.device, self.dtype, self.model)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "LatencyCurve":
        return cls(**data)


def measure_forward_latency(
    model,
    new_tokens: Sequence[int] = tuple(range(1, 33)),
    *,
    context: int = 256,
    repeats: int = 7,
    warmup: int = 2,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> LatencyCurve:
    """Measure t(n) for each n in ``new_tokens`` on top of a ``context``-token KV cache.

    The cache is filled once with random token ids; each timed pass appends n random ids
    and is cropped back, so every pass sees the same context length. The n values are
    visited in a fresh random order in every repeat so drift on a shared machine hits
    them alike; the median of ``repeats`` timings is reported. CUDA work is
    synchronised before each clock read.
    """
    ns = sorted(set(int(n) for n in new_tokens))
    if not ns or ns[0] < 1:
        raise ValueError(f"new_tokens must be positive integers, got {list(new_tokens)}")
    if 1 not in ns:
        ns = [1] + ns  # every ratio is relative to t(1)
    if context < 1 or repeats < 1 or warmup < 0:
        raise ValueError("context and repeats must be >= 1 and warmup >= 0")
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and context + ns[-1] > limit:
        raise ValueError(f"context {context} + {ns[-1]} new tokens exceed the model's {limit} positions")
    device = input_device(model)
    vocab = model.get_input_embeddings().weight.shape[0]
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    samples: dict[int, list[float]] = {n: [] for n in ns}
    cache = DynamicCache(config=model.config)
    order_gen = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=(warmup + repeats) * len(ns), desc="t(n)", leave=False)
    with torch.inference_mode():
        prefix = torch.randint(0, vocab, (1, context), generator=generator).to(device)  # (1, C)
        model(input_ids=prefix, cache=cache, use_cache=True)
        for rep in range(warmup + repeats):
            for i in torch.randperm(len(ns), generator=order_gen).tolist():
                n = ns[i]
                ids = torch.randint(0, vocab, (1, n), generator=generator).to(device)  # (1, n)
                synchronize(device)
                start = time.perf_counter()
                model(input_ids=ids, cache=cache, use_cache=True)
                synchronize(device)
                elapsed = time.perf_counter() - start
                cache.crop(-n)  # back to the context
                if rep >= warmup:
                    samples[n].append(elapsed)
                if bar is not None:
                    bar.update()
    if bar is not None:
        bar.close()
    dtype = str(model.get_input_embeddings().weight.dtype).replace("torch.", "")
    return LatencyCurve(
        new_tokens=ns,
        seconds=[statistics.median(samples[n]) for n in ns],
        context=context,
        repeats=repeats,
        device=str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        dtype=dtype,
        model=str(getattr(model.config, "name_or_path", "") or type(model).__name__),
        samples=[samples[n] for n in ns],
    )


def measure_static_latency(model, *, context: int = 256, repeats: int = 7, warmup: int = 2,
                           generator: torch.Generator | None = None, sizes: Sequence[int] | None = None) -> LatencyCurve:
    """t(n) of the compiled static path (``pass_ref.static_model``) at each of its call sizes (or those of ``sizes``).

    Each timed call goes through the path's ``forward`` (embedding, mask, padding, compiled
    decoder and LM head, cache bookkeeping) on top of ``context`` cached random tokens and
    is rolled back; sizes are visited in a fresh random order in every repeat. The curve is
    ``padded``: a call of n inputs costs t of the size it is padded to.
    """
    static = getattr(model, "pass_ref_static", None)
    if static is None:
        raise ValueError("the model has no static path: call pass_ref.static_model(model) first")
    if context < 1 or repeats < 1 or warmup < 0:
        raise ValueError("context and repeats must be >= 1 and warmup >= 0")
    if context + static.sizes[-1] > static.max_cache_len:
        raise ValueError(f"context {context} + {static.sizes[-1]} inputs exceed the static cache's {static.max_cache_len}")
    device, vocab = input_device(model), model.get_input_embeddings().weight.shape[0]
    generator = torch.Generator().manual_seed(0) if generator is None else generator
    ns = list(static.sizes) if sizes is None else [n for n in static.sizes if n in set(sizes)]
    if not ns:
        raise ValueError(f"none of sizes {list(sizes)} is one of the static path's sizes {list(static.sizes)}")
    samples: dict[int, list[float]] = {n: [] for n in ns}
    cached = static.open()
    with torch.inference_mode():
        cached.forward(torch.randint(0, vocab, (context,), generator=generator).tolist())
        for rep in range(warmup + repeats):
            for i in torch.randperm(len(ns), generator=generator).tolist():
                ids = torch.randint(0, vocab, (ns[i],), generator=generator).tolist()
                synchronize(device)
                start = time.perf_counter()
                cached.forward(ids)
                synchronize(device)
                elapsed = time.perf_counter() - start
                cached.rollback(context)
                if rep >= warmup:
                    samples[ns[i]].append(elapsed)
    static.open()  # leave the cache to the next decode
    return LatencyCurve(
        new_tokens=ns, seconds=[statistics.median(samples[n]) for n in ns], context=context, repeats=repeats,
        device=str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        dtype=str(model.get_input_embeddings().weight.dtype).replace("torch.", ""),
        model=str(getattr(model.config, "name_or_path", "") or type(model).__name__), samples=[samples[n] for n in ns],
        padded=True,
    )


def choose_freezing(model, sizes: Sequence[int] = (1,), *, context: int = 256, rounds: int = 6, repeats: int = 3,
                    generator: torch.Generator | None = None, progress: bool = False) -> dict[int, dict]:
    """Keep, for each of ``sizes``, the faster of its frozen and plain-weight compiled graphs on this machine.

    ``model`` is on the compiled static path (``pass_ref.static_model``). For each size the
    other variant is compiled, then both are timed in ``rounds`` alternating rounds
    (``repeats`` calls each, ``measure_static_latency`` on ``context`` cached tokens; the
    order flips every round, so drift hits both). A variant wins by its median over rounds
    of plain / frozen; the loser's graph is dropped. Returns, per size: ``frozen`` (the
    choice), ``plain_over_frozen`` (that median ratio) and both variants' median ms.
    ``progress``: a line per size (compiling the other variant takes as long as the first).
    """
    static = getattr(model, "pass_ref_static", None)
    if static is None or not static.compiled:
        raise ValueError("choose_freezing needs a model on the compiled static path: pass_ref.static_model(model)")
    if rounds < 1 or repeats < 1:
        raise ValueError("rounds and repeats must be >= 1")
    generator = torch.Generator().manual_seed(0) if generator is None else generator
    choices = {}
    for size in sizes:
        if progress:
            print(f"static path: size {size}, compiling its {'plain-weight' if size in static.frozen else 'frozen'} graph "
                  "to time both ...", flush=True)
        static.use_freezing(size, size not in static.frozen)  # compiles the other variant: both now exist
        times: dict[bool, list[float]] = {True: [], False: []}
        for r in range(rounds):
            for frozen in (True, False) if r % 2 else (False, True):
                static.use_freezing(size, frozen)
                curve = measure_static_latency(model, context=context, repeats=repeats, warmup=1, generator=generator,
                                               sizes=[size])
                times[frozen].append(curve.seconds[0])
        ratio = statistics.median(plain / frozen for plain, frozen in zip(times[False], times[True]))
        static.use_freezing(size, ratio >= 1, drop_other=True)
        choices[size] = {"frozen": ratio >= 1, "plain_over_frozen": round(ratio, 4),
                         "frozen_ms": round(1000 * statistics.median(times[True]), 3),
                         "plain_ms": round(1000 * statistics.median(times[False]), 3)}
    return choices


def predicted_pass_speedup(curve: LatencyCurve, acceptance: Sequence[float]) -> float:
    """PaSS over autoregressive: (2 + sum alpha_i) t(1) / (2 t(L + 1)), L = len(acceptance)."""
    L = len(acceptance)
    return (2.0 + float(sum(acceptance))) * curve.t(1) / (2.0 * curve.t(L + 1))


def predicted_speculative_speedup(curve: LatencyCurve, acceptance: Sequence[float], draft_call_s: float) -> float:
    """Draft model with k = len(acceptance) drafts, each draft call costing ``draft_call_s``."""
    k = len(acceptance)
    return (1.0 + float(sum(acceptance))) * curve.t(1) / (curve.t(k + 1) + k * draft_call_s)


def predicted_prompt_lookup_speedup(curve: LatencyCurve, tokens_per_call: float, candidates: int) -> float:
    """Prompt lookup: ``tokens_per_call`` tokens per pass over up to ``candidates`` + 1 tokens.

    Uses t(candidates + 1), the worst case (a pass over fewer candidates costs less).
    """
    return tokens_per_call * curve.t(1) / curve.t(candidates + 1)


def accepted_count_law(acceptance: Sequence[float]) -> list[float]:
    """P(a = k) for k = 0..K from per-position acceptance A_i = P(a >= i) (``GenerationStats``)."""
    A = [1.0] + [float(a) for a in acceptance] + [0.0]
    return [max(A[a] - A[a + 1], 0.0) for a in range(len(acceptance) + 1)]


def predicted_fused_speedup(curve: LatencyCurve, acceptance: Sequence[float], groups: Sequence[int] | None = None) -> float:
    """One-call PaSS with L = len(acceptance) over autoregressive decoding.

    A call with drafts has 1 + L + |A| L inputs and yields 1 + a tokens; the next call has
    drafts iff a is in the group set A. A call without drafts is the drafting call
    [z] + G_0: 1 + L inputs, one token, and the next call has drafts. The two-state chain's
    stationary law gives the mean. A = {} is the paper's two calls
    (``predicted_pass_speedup``).
    """
    L = len(acceptance)
    A = list(range(L + 1)) if groups is None else sorted(set(groups))
    law = accepted_count_law(acceptance)
    stay = sum(law[a] for a in A if a <= L)  # P(next call has drafts | this one had)
    # Stationary probability p of a call with drafts: p = p stay + (1 - p), as a call without drafts always drafts.
    p = 1.0 / (2.0 - stay)
    tokens = p * (1.0 + sum(a * law[a] for a in range(L + 1))) + (1.0 - p) * 1.0
    seconds = p * curve.at(1 + L + len(A) * L) + (1.0 - p) * curve.at(1 + L)
    return tokens * curve.t(1) / seconds


@dataclass(frozen=True)
class GroupChoice:
    """The one-call group set ``best_groups`` chose, with what the latency model predicts."""

    groups: tuple[int, ...]  # () is the paper's two calls
    predicted: float  # its predicted speed-up over autoregressive decoding
    two_call: float  # the paper's two calls, predicted on the same curve
    every: float | None  # every group (a = 0..L), None where that call was not measured


GROUP_MARGIN = 0.05  # a group set must be predicted this much faster than the two calls to be chosen


def best_groups(curve: LatencyCurve, acceptance: Sequence[float], *, max_size: int | None = None,
                margin: float = GROUP_MARGIN) -> GroupChoice:
    """The group set A of one-call PaSS with the highest predicted speed-up on ``curve``.

    Searches every subset of 0..L (L = len(acceptance), the per-position acceptance
    P(a >= i) a set was measured with) whose call, 1 + L + |A| L inputs, is at most
    ``max_size`` (default: the largest n the curve measured, so nothing is extrapolated).
    The empty set is the paper's two calls, so the choice is never predicted slower than
    them. Ties go to fewer groups. A non-empty set is chosen only when it is predicted at
    least ``margin`` faster than the two calls: a set's stored acceptance comes from other
    prompts than the ones decoded, and measured / predicted varies by several per cent
    between configurations of one run (``python -m pass_ref fastest``), so a smaller gain
    is within the prediction's error and the two calls are the safe default.
    """
    from itertools import combinations

    L = len(acceptance)
    if L < 1:
        raise ValueError("need the acceptance of at least one look-ahead position")
    if any(not 0.0 <= float(a) <= 1.0 for a in acceptance):
        raise ValueError(f"acceptance values are probabilities, got {list(acceptance)}")
    largest = curve.new_tokens[-1] if max_size is None else max_size
    if L + 1 > largest:
        raise ValueError(f"the curve must reach n = L + 1 = {L + 1} (it reaches {largest})")
    best = ((), predicted_fused_speedup(curve, acceptance, ()))
    for size in range(1, L + 2):
        if 1 + L + size * L > largest:
            break
        for A in combinations(range(L + 1), size):
            value = predicted_fused_speedup(curve, acceptance, A)
            if value > best[1] * (1 + 1e-9):
                best = (A, value)
    two_call = predicted_pass_speedup(curve, acceptance)
    if best[1] < two_call * (1 + margin):
        best = ((), two_call)
    every = predicted_fused_speedup(curve, acceptance) if 1 + L + (L + 1) * L <= largest else None
    return GroupChoice(best[0], best[1], two_call, every)


LOOKAHEAD_MARGIN = 0.02  # a shorter draft must be predicted this much faster than all L look-ahead tokens


@dataclass(frozen=True)
class LookaheadChoice:
    """How many of a set's L look-ahead tokens two-call PaSS reads (``best_num_lookahead``), with its prediction."""

    num_lookahead: int  # K: the drafting call reads [LA]_1..[LA]_K
    predicted: float  # its predicted speed-up over autoregressive decoding
    every: float  # all L tokens, predicted on the same curve
    by_k: dict[int, float]  # the prediction for each K whose call size the curve measured


def best_num_lookahead(curve: LatencyCurve, acceptance: Sequence[float], *,
                       margin: float = LOOKAHEAD_MARGIN) -> LookaheadChoice:
    """The number K <= L of look-ahead tokens that makes two-call PaSS fastest on ``curve``.

    Look-ahead position i attends to positions 1..i only, so the first K vectors of a set
    of L draft exactly what they draft in the full set: K trades the acceptance
    P(a >= i), i > K (``acceptance``, L values) against two calls of K + 1 inputs instead
    of L + 1 (``predicted_pass_speedup``). Where t(n) is flat the answer is L; where each
    input costs time (a compute-bound CPU) the last positions, which are rarely accepted,
    cost more than they bring. K < L is chosen only when predicted ``margin`` faster than L;
    only the K whose call size K + 1 the curve measured are candidates.
    """
    L = len(acceptance)
    if L < 1:
        raise ValueError("need the acceptance of at least one look-ahead position")
    if L + 1 not in curve.new_tokens:
        raise ValueError(f"the curve must have measured n = L + 1 = {L + 1} (it has {curve.new_tokens})")
    by_k = {K: predicted_pass_speedup(curve, acceptance[:K]) for K in range(1, L + 1) if K + 1 in curve.new_tokens}
    K = max(by_k, key=lambda k: (by_k[k], k))  # ties go to more tokens
    if by_k[K] < by_k[L] * (1 + margin):
        K = L
    return LookaheadChoice(K, by_k[K], by_k[L], by_k)


def predicted_speedup_from_calls(curve: LatencyCurve, call_sizes: Sequence[int], new_tokens: int) -> float:
    """Per-token speed-up over autoregressive decoding of a run that made calls of these
    sizes (inputs per call) for ``new_tokens`` tokens: new_tokens t(1) / sum t(size).

    The first call (the prompt's prefill, the same for every method) counts as one token.
    """
    if not call_sizes or new_tokens < 1:
        raise ValueError("need at least one call and one token")
    return new_tokens * curve.t(1) / predicted_seconds(curve, call_sizes)


def predicted_seconds(curve: LatencyCurve, call_sizes: Sequence[int]) -> float:
    """sum of t(size) over a run's calls, the first (the prefill) counted as one token."""
    return curve.t(1) + sum(curve.at(n) for n in call_sizes[1:])


def break_even(curve: LatencyCurve, L: int, *, groups: int | None = None, candidates: int | None = None) -> dict:
    """Accepted drafts per iteration each method needs to match autoregressive decoding.

    two-call PaSS: E[a] > 2 t(L+1)/t(1) - 2; one-call PaSS with ``groups`` groups (default
    L + 1): E[a] > t(1 + L + G L)/t(1) - 1; prompt lookup with ``candidates`` drafts: the
    drafts accepted per lookup call must exceed t(candidates + 1)/t(1) - 1. A call that
    measures cheaper than t(1) (timing noise on a flat curve) gives 0.
    """
    G = L + 1 if groups is None else groups
    k = L if candidates is None else candidates
    needed = {
        "two_call": 2.0 * curve.at(L + 1) / curve.t(1) - 2.0,
        "fused": curve.at(1 + L + G * L) / curve.t(1) - 1.0,
        "prompt_lookup": curve.at(k + 1) / curve.t(1) - 1.0,
    }
    return {name: max(value, 0.0) for name, value in needed.items()}  # 0: any accepted draft pays


def plot_latency(curves: Sequence[LatencyCurve], ax=None, *, relative: bool = True, labels: Sequence[str] | None = None):
    """Plot t(n)/t(1) (or t(n) in ms) against n for one or more curves; returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for i, curve in enumerate(curves):
        label = labels[i] if labels else f"{curve.model} ({curve.dtype}, {curve.device})"
        ys = [curve.ratio(n) for n in curve.new_tokens] if relative else [1e3 * s for s in curve.seconds]
        ax.plot(curve.new_tokens, ys, marker="o", markersize=3, label=label)
    ax.set_xlabel("n new tokens in the forward pass")
    ax.set_ylabel("t(n) / t(1)" if relative else "t(n) [ms]")
    if relative:
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax
