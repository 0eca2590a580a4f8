"""Speed benchmark: every method on the same prompts, in one process, interleaved.

Methods: every entry of the method table (``pass_ref.METHODS``: ours, run through the one
loop) plus two reference runs of transformers (``REFERENCE``):

    hf             Hugging Face ``model.generate`` (greedy or sampling)
    hf-static      the same with transformers' static-cache recipe: a ``StaticCache`` of one fixed
                   length and the one-token step under ``torch.compile`` (inductor freezing),
                   the fastest plain decoding transformers offers on a CPU (``hf_static_generate``)
    prompt-lookup  transformers' prompt lookup decoding (``prompt_lookup_num_tokens``), greedy only

A method registered in the table (a test may register its own) is benchmarked with no
change here: its keyword options come from ``BenchRunner(options=...)``, its draft size
("L" column) from the option the table names as its ``size``.

With a latency curve t(n), every row also gets the speed-up the latency model predicts
from the sizes of the calls it really made (``latency.predicted_speedup_from_calls``;
HF's calls are counted by a forward hook), so predicted and measured sit side by side.

For every prompt the runs go in a rotated order (A B C, then B C A, ...), so drift of a
shared machine hits every method alike; speed-ups are medians of *paired* per-prompt
ratios. Every generation makes exactly ``max_new_tokens`` tokens (EOS is ignored, as in
the paper's "seconds to generate 512 tokens"), so greedy outputs can be compared token
for token. Records are appended to ``records.jsonl`` as they come: an interrupted run
(Ctrl-C) keeps what it measured.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from ..cache import input_device
from ..config import DecodingConfig
from ..lookahead import LookaheadEmbeddings
from ..loop import decode
from ..methods import METHODS as TABLE
from ..methods import make_drafter
from .latency import GROUP_MARGIN
from .timing import synchronize, timed

REFERENCE = {"hf": "HF generate", "hf-static": "HF generate, static cache compiled",
             "prompt-lookup": "HF prompt lookup"}  # transformers' own decoding, not drafters


def all_methods() -> tuple[str, ...]:
    """Every method the benchmark can run: the table's (in its order) and the reference runs."""
    return (*TABLE, *REFERENCE)


def label(method: str) -> str:
    return REFERENCE[method] if method in REFERENCE else TABLE[method].label


BASELINES = ("ar", "hf", "hf-static", "prompt-lookup")  # every row gets a paired speed-up over each (where it ran)


@dataclass(frozen=True)
class RunSpec:
    """One row of the table: a method, its draft length L (if any) and a temperature."""

    method: str
    L: int | None
    temperature: float

    @property
    def key(self) -> str:
        return f"{self.method}" + (f"/L={self.L}" if self.L is not None else "") + f"/T={self.temperature:g}"


def plan_runs(
    methods: Sequence[str],
    temperatures: Sequence[float],
    lookaheads: Sequence[int],
    *,
    unk_lookaheads: Sequence[int] | None = None,
    options: dict[str, dict] | None = None,
    prompt_lookup_tokens: int = 10,
) -> list[RunSpec]:
    """Every (method, L, T) combination to run; HF prompt lookup only at T = 0 (greedy only).

    A method whose ``size`` is ``num_lookahead`` runs once per L in ``lookaheads``
    (``unk_lookaheads`` for the [UNK] baseline); others once, their size from ``options``.
    """
    known = all_methods()
    unknown = set(methods) - set(known)
    if unknown:
        raise ValueError(f"unknown method(s) {sorted(unknown)}; choose from {known}")
    if not temperatures:
        raise ValueError("give at least one temperature")
    if any(t < 0 for t in temperatures):
        raise ValueError(f"temperatures must be >= 0, got {list(temperatures)}")
    if not lookaheads or any(L < 1 for L in lookaheads):
        raise ValueError(f"look-ahead lengths must be >= 1, got {list(lookaheads)}")
    options = options or {}
    specs = []
    for T in temperatures:
        for method in known:
            if method not in methods:
                continue
            if method in REFERENCE:
                if method in ("hf", "hf-static"):
                    specs.append(RunSpec(method, None, T))
                elif T == 0:
                    specs.append(RunSpec(method, prompt_lookup_tokens, T))
                continue
            entry = TABLE[method]
            if entry.size == "num_lookahead":
                sizes = unk_lookaheads if (method == "pass-unk" and unk_lookaheads is not None) else lookaheads
                specs += [RunSpec(method, L, T) for L in sizes]
            else:
                size = {**entry.defaults, **options.get(method, {})}.get(entry.size) if entry.size else None
                specs.append(RunSpec(method, size, T))
    return specs


def bench_options(*, num_draft_tokens: int = 4, prompt_lookup_tokens: int = 10, groups="auto", hybrid_groups=(0,),
                  draft_model=None, extra: dict[str, dict] | None = None) -> dict[str, dict]:
    """The benchmark's flags as keyword options of the table's methods (``extra`` adds or overrides)."""
    options = {
        "pass-fused": {"groups": groups},
        "hybrid": {"groups": hybrid_groups, "lookup_tokens": prompt_lookup_tokens},
        "lookup": {"num_draft_tokens": prompt_lookup_tokens},
        "speculative": {"num_draft_tokens": num_draft_tokens, "draft_model": draft_model},
    }
    for method, values in (extra or {}).items():
        options[method] = {**options.get(method, {}), **values}
    return options


def hf_static_generate(model, ids: torch.Tensor, config, max_cache_len: int = 1024) -> torch.Tensor:
    """transformers' fastest plain decoding: ``generate`` on a ``StaticCache`` with its decoding step compiled.

    The recipe of transformers' documentation, made to work on a CPU: ``CompileConfig(dynamic=False)``
    with ``_compile_all_devices`` (generate compiles nothing on a CPU otherwise) and inductor
    freezing (prepacked weights; set through inductor's config, since CompileConfig's options
    do not reach it). Prefill runs eagerly; the one-token step is compiled once per model
    (and ``max_cache_len``), on the first call. The cache is kept on the model and reset per call.
    """
    from transformers import CompileConfig, StaticCache

    context = getattr(model.config, "max_position_embeddings", None) or max_cache_len
    length = min(max_cache_len, context)
    if ids.shape[1] + config.max_new_tokens > length:
        raise ValueError(f"prompt ({ids.shape[1]}) + max_new_tokens ({config.max_new_tokens}) exceed the static cache of {length}")
    kept = getattr(model, "_pass_ref_hf_static_cache", None)  # (length, cache): one graph per length
    if kept is None or kept[0] != length:
        kept = model._pass_ref_hf_static_cache = (length, StaticCache(config=model.config, max_cache_len=length))
    cache = kept[1]
    cache.reset()
    config = copy.deepcopy(config)
    config.compile_config = CompileConfig(fullgraph=False, dynamic=False)
    config.compile_config._compile_all_devices = True
    with torch._inductor.config.patch(freezing=True):
        return model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=config, cache=cache)


class _CallCounter:
    """Counts forward passes of a model and their input sizes (HF generate reports neither)."""

    def __init__(self, model) -> None:
        self.calls = 0
        self.sizes: list[int] = []
        self.handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs) -> None:
        self.calls += 1
        ids = kwargs.get("input_ids", args[0] if args else None)
        ids = kwargs["inputs_embeds"] if ids is None else ids
        self.sizes.append(int(ids.shape[1]))

    def close(self) -> None:
        self.handle.remove()


class BenchRunner:
    """Runs one ``RunSpec`` on one prompt and returns a flat record (a dict).

    ``trained``: look-ahead sets by L for the methods that need one. ``options``: keyword
    options per method name (e.g. ``{"pass-fused": {"groups": (0, 1)}}``); a method gets
    only the options its table entry takes, plus ``num_lookahead`` from the spec.
    ``groups="auto"`` is resolved per set with ``latency.best_groups`` from the set's
    measured acceptance and ``latency`` (this machine's t(n)); with a ``calibration`` prompt
    (one that is not benchmarked), a group set predicted to beat the paper's two calls is
    then timed against them on it and kept only if it is measured ``GROUP_MARGIN`` faster
    (``confirm_groups``): a prediction alone can pick a set that loses. Each record keeps the
    groups used; ``group_choices`` says how each was chosen. Likewise ``num_lookahead="auto"``
    in two-call PaSS's options reads the first K of the set's L look-ahead tokens, K from
    ``latency.best_num_lookahead`` (``auto_num_lookahead``, ``lookahead_choices``); an int
    there reads that many. Each record then keeps the K used (``num_lookahead``).
    """

    def __init__(
        self,
        model,
        *,
        max_new_tokens: int,
        top_k: int | None = 10,
        trained: dict[int, LookaheadEmbeddings] | None = None,
        options: dict[str, dict] | None = None,
        seed: int = 0,
        static_cache_len: int = 1024,
        latency=None,
        calibration: Sequence[int] | None = None,
        calibration_tokens: int | None = None,
    ) -> None:
        self.model = model
        self.latency = latency  # LatencyCurve for groups="auto"
        self.calibration = calibration  # a prompt, not a benchmarked one, on which "auto" groups are timed
        self.calibration_tokens = min(CALIBRATION_TOKENS, max_new_tokens) if calibration_tokens is None else calibration_tokens
        self.group_choices: dict[tuple[str, int], dict] = {}  # (method, L) -> how groups="auto" chose
        self.lookahead_choices: dict[tuple[str, int], dict] = {}  # (method, L) -> how num_lookahead="auto" chose
        self.static_cache_len = static_cache_len  # one length for every prompt: hf-static compiles once
        self.max_new_tokens = max_new_tokens
        self.top_k = top_k
        self.trained = trained or {}
        self.options = options or {}
        self.seed = seed

    def _hf(self, ids: torch.Tensor, spec: RunSpec) -> tuple[list[int], list[int], float]:
        config = copy.deepcopy(self.model.generation_config)
        # Fixed length, like our loops. None is not enough: generate() falls back to the model's
        # default EOS for unset fields; an empty list means "no stop token".
        config.eos_token_id = []
        config.max_new_tokens = self.max_new_tokens
        config.min_new_tokens = None
        config.do_sample = spec.temperature > 0
        config.temperature = spec.temperature if spec.temperature > 0 else None
        config.top_k = self.top_k if spec.temperature > 0 else None
        config.top_p = None
        if config.pad_token_id is None:
            config.pad_token_id = 0
        if spec.method == "prompt-lookup":
            config.prompt_lookup_num_tokens = spec.L
        counter = _CallCounter(self.model)
        try:
            synchronize(input_device(self.model))
            start = time.perf_counter()
            with torch.inference_mode():
                if spec.method == "hf-static":
                    out = hf_static_generate(self.model, ids, config, self.static_cache_len)
                else:
                    out = self.model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=config)
            synchronize(input_device(self.model))
            seconds = time.perf_counter() - start
        finally:
            counter.close()
        return out[0, ids.shape[1] :].tolist(), counter.sizes, seconds

    def drafter(self, spec: RunSpec):
        """The drafter of ``spec`` from the method table."""
        lookahead, options = self.drafter_options(spec)
        return make_drafter(spec.method, self.model, lookahead, **options)

    def drafter_options(self, spec: RunSpec) -> tuple:
        """``(look-ahead set or None, keyword options)`` the drafter of ``spec`` is built with ("auto" groups resolved)."""
        entry = TABLE[spec.method]
        options = {k: v for k, v in self.options.get(spec.method, {}).items() if k in entry.options}
        wanted = options.get("num_lookahead")  # "auto": choose how many of the set's L to read
        if entry.size == "num_lookahead":
            options["num_lookahead"] = spec.L
        lookahead = None
        if entry.needs_lookahead:
            if spec.L not in self.trained:
                raise ValueError(f"no look-ahead embeddings for {spec.method} with L = {spec.L}")
            lookahead = self.trained[spec.L]
        if isinstance(options.get("groups"), str):
            options["groups"] = self.auto_groups(options["groups"], spec.method, lookahead, spec.L, options)
        if isinstance(wanted, str):
            options["num_lookahead"] = self.auto_num_lookahead(wanted, spec.method, lookahead, spec.L, options)
        elif wanted is not None:  # the first ``wanted`` of the set's L
            if not 1 <= wanted <= spec.L:
                raise ValueError(f"num_lookahead must be between 1 and the set's L = {spec.L}, got {wanted}")
            options["num_lookahead"] = wanted
        return lookahead, options

    def auto_num_lookahead(self, value: str, method: str, lookahead, L: int, options: dict) -> int:
        """``num_lookahead="auto"`` (two-call PaSS): the K <= L of ``latency.best_num_lookahead`` on this
        runner's latency curve; with a calibration prompt, a K < L is kept only if it is not timed
        slower than all L there. Chosen once per (method, L); ``lookahead_choices`` says how."""
        from .latency import best_num_lookahead

        if value != "auto":
            raise ValueError(f"num_lookahead must be an int or 'auto', got {value!r}")
        if method != "pass":
            raise ValueError(f"num_lookahead='auto' is for two-call PaSS ('pass'), not {method!r}")
        if (method, L) in self.lookahead_choices:
            return self.lookahead_choices[(method, L)]["num_lookahead"]
        acceptance = self._acceptance(lookahead, L, "num_lookahead")
        choice = best_num_lookahead(self.latency, acceptance)
        note = {"predicted": choice.num_lookahead, "predicted_speedup": round(choice.predicted, 4),
                "all_predicted": round(choice.every, 4), "by_k": {k: round(v, 4) for k, v in choice.by_k.items()},
                "num_lookahead": choice.num_lookahead}
        if choice.num_lookahead < L and self.calibration is not None:
            measured = confirm_faster(self.model, method, lookahead, {**options, "num_lookahead": L},
                                      {**options, "num_lookahead": choice.num_lookahead}, self.calibration,
                                      max_new_tokens=self.calibration_tokens)
            note.update(measured_gain=round(measured, 4), num_lookahead=choice.num_lookahead if measured >= 1 else L)
        self.lookahead_choices[(method, L)] = note
        return note["num_lookahead"]

    def _acceptance(self, lookahead, L: int, option: str) -> list[float]:
        """The set's stored per-position acceptance and this runner's t(n), which an "auto" option chooses from."""
        if self.latency is None:
            raise ValueError(f"{option}='auto' needs the machine's t(n): give BenchRunner a latency curve")
        acceptance = lookahead.measured_acceptance(L)
        if acceptance is None:
            raise ValueError(f"{option}='auto' needs the set's measured acceptance (metadata 'heldout_greedy'); "
                             f"pass an explicit {option} for a set that was never evaluated")
        return acceptance

    def auto_groups(self, value: str, method: str, lookahead, L: int, options: dict) -> tuple[int, ...]:
        """``groups="auto"``: the set's best group set on this runner's latency curve, confirmed by
        timing on the calibration prompt when there is one; chosen once per (method, L)."""
        from .latency import best_groups

        if value != "auto":
            raise ValueError(f"groups must be a list of ints, None or 'auto', got {value!r}")
        if (method, L) in self.group_choices:
            return self.group_choices[(method, L)]["groups"]
        choice = best_groups(self.latency, self._acceptance(lookahead, L, "groups"))
        note = {"predicted": list(choice.groups), "predicted_speedup": round(choice.predicted, 4),
                "two_call_predicted": round(choice.two_call, 4), "groups": choice.groups}
        if choice.groups and self.calibration is not None:
            measured = confirm_groups(self.model, method, lookahead, {**options, "groups": choice.groups}, self.calibration,
                                      max_new_tokens=self.calibration_tokens)
            note.update(measured_gain=round(measured, 4), groups=choice.groups if measured >= 1 + GROUP_MARGIN else ())
        self.group_choices[(method, L)] = note
        return note["groups"]

    def run(self, spec: RunSpec, prompt: Sequence[int], prompt_index: int) -> dict:
        device = self.model.get_input_embeddings().weight.device
        ids = torch.tensor([list(prompt)], dtype=torch.long, device=device)  # (1, T)
        accepted: list[int] = []
        drafted: list[int] = []
        extra, forward_seconds, call_seconds = {}, None, None
        if spec.method in REFERENCE:
            tokens, sizes, seconds = self._hf(ids, spec)
            calls, draft_calls = len(sizes), 0
        else:
            config = DecodingConfig.from_options(
                self.model, max_new_tokens=self.max_new_tokens, temperature=spec.temperature,
                top_k=self.top_k if spec.temperature > 0 else None, seed=self.seed + prompt_index,
            )
            lookahead, options = self.drafter_options(spec)
            drafter = make_drafter(spec.method, self.model, lookahead, **options)
            if "groups" in options:  # one-call methods: the groups used
                extra["groups"] = None if options["groups"] is None else list(options["groups"])
            if self.options.get(spec.method, {}).get("num_lookahead") is not None:  # the K of the set's L used
                extra["num_lookahead"] = options["num_lookahead"]
            out, timing = timed(lambda: decode(self.model, drafter, ids, config), self.model)
            tokens, calls, seconds, forward_seconds = out.new_tokens.tolist(), out.stats.model_calls, timing.wall_s, timing.forward_s
            sizes, call_seconds = out.stats.call_sizes, timing.call_seconds
            draft_calls = out.stats.draft_model_calls
            accepted, drafted = out.stats.accepted, out.stats.drafted
        return {
            "method": spec.method,
            "L": spec.L,
            "temperature": spec.temperature,
            "top_k": self.top_k if spec.temperature > 0 else None,
            "prompt_index": prompt_index,
            "seconds": seconds,
            "forward_seconds": forward_seconds,  # inside the model's forward passes (our loop only)
            "call_seconds": call_seconds,  # each of those passes, in call order (call_sizes' order)
            "new_tokens": len(tokens),
            "seconds_per_100": 100.0 * seconds / max(len(tokens), 1),
            "model_calls": calls,
            "call_sizes": sizes,
            "draft_model_calls": draft_calls,
            "accepted": accepted,
            "drafted": drafted,
            "tokens": tokens,
            **extra,
        }


CALIBRATION_TOKENS = 48  # greedy tokens per timed calibration run
CALIBRATION_ROUNDS = 3  # interleaved pairs (two calls, candidate); the median ratio decides


def confirm_groups(model, method: str, lookahead, options: dict, prompt: Sequence[int], *,
                   max_new_tokens: int = CALIBRATION_TOKENS, rounds: int = CALIBRATION_ROUNDS) -> float:
    """Measured speed of ``method`` with ``options`` (its ``groups`` among them) over the same method
    with ``groups=()`` (the paper's two calls), by ``confirm_faster``. Above 1: the group set is
    faster on this machine.
    """
    return confirm_faster(model, method, lookahead, {**options, "groups": ()}, options, prompt,
                          max_new_tokens=max_new_tokens, rounds=rounds)


def confirm_faster(model, method: str, lookahead, base: dict, candidate: dict, prompt: Sequence[int], *,
                   max_new_tokens: int = CALIBRATION_TOKENS, rounds: int = CALIBRATION_ROUNDS) -> float:
    """t(base) / t(candidate): ``method`` built with either options, the median over ``rounds``
    interleaved pairs of greedy runs on ``prompt``, after one untimed run of each. Above 1:
    ``candidate`` is faster on this machine.
    """
    if rounds < 1:
        raise ValueError("rounds must be >= 1")
    device = input_device(model)
    ids = torch.tensor([list(prompt)], dtype=torch.long, device=device)  # (1, T)
    config = DecodingConfig.from_options(model, max_new_tokens=max_new_tokens, temperature=0.0)

    def seconds(options: dict) -> float:
        drafter = make_drafter(method, model, lookahead, **options)
        synchronize(device)
        began = time.perf_counter()
        decode(model, drafter, ids, config)
        synchronize(device)
        return time.perf_counter() - began

    seconds(base), seconds(candidate)  # warm-up: caches, allocator, first use of each call size
    ratios = []
    for turn in range(rounds):
        pair = {}
        for name, options in rotated([("base", base), ("candidate", candidate)], turn):
            pair[name] = seconds(options)
        ratios.append(pair["base"] / pair["candidate"])
    return statistics.median(ratios)


def rotated(items: Sequence, turn: int) -> list:
    """``items`` started at position ``turn`` (mod its length): A B C, B C A, C A B, ... for turn 0, 1, 2."""
    shift = turn % len(items)
    return list(items[shift:]) + list(items[:shift])


def run_benchmark(
    runner: BenchRunner,
    prompts: Sequence[Sequence[int]],
    specs: Sequence[RunSpec],
    *,
    records_path: str | Path | None = None,
    progress: bool = True,
) -> tuple[list[dict], bool]:
    """Run every spec on every prompt, rotating the order per prompt.

    Returns ``(records, completed)``; ``completed`` is False when interrupted (Ctrl-C),
    in which case the records so far are returned (and already written to
    ``records_path``, one JSON object per line).
    """
    if not prompts:
        raise ValueError("no prompts to benchmark")
    if not specs:
        raise ValueError("no runs planned: check --methods / --temperature")
    records: list[dict] = []
    completed = True
    with record_sink(records_path, len(prompts) * len(specs), "bench", progress, mode="a") as keep:
        try:
            for i, prompt in enumerate(prompts):
                for spec in rotated(specs, i):
                    record = runner.run(spec, prompt, i)
                    records.append(record)
                    keep(record, f"{spec.key} {record['seconds_per_100']:.2f} s/100")
        except KeyboardInterrupt:
            completed = False
    return records, completed


@contextlib.contextmanager
def record_sink(path: str | Path | None, total: int, desc: str, progress: bool, mode: str = "w"):
    """Yields ``keep(record, note)``: writes the record to ``path`` (JSON lines, flushed) and moves a progress bar."""
    sink = open(path, mode, encoding="utf-8") if path is not None else None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=desc, unit="run")

    def keep(record: dict, note: str) -> None:
        if sink is not None:
            sink.write(json.dumps(record) + "\n")
            sink.flush()
        if bar is not None:
            bar.set_postfix_str(note)
            bar.update()

    try:
        yield keep
    finally:
        if bar is not None:
            bar.close()
        if sink is not None:
            sink.close()


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def summarize(records: Sequence[dict], latency=None, draft_call_s: float | None = None) -> list[dict]:
    """One row per (method, L, T): medians, paired speed-ups, tokens per call, acceptance.

    ``speedup_vs_ar`` / ``speedup_vs_hf`` are medians over prompts of
    t_baseline(prompt) / t_method(prompt) (per 100 tokens), only over prompts where both
    ran. ``same_as_ar`` is the fraction of prompts whose greedy tokens equal our
    autoregressive loop's (None when sampling). With a ``latency`` curve
    (``pass_ref.experiments.latency.LatencyCurve``) each PaSS / draft-model row also gets the speed-up
    the latency model predicts from its measured acceptance.
    """
    from .latency import predicted_speculative_speedup, predicted_speedup_from_calls

    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["method"], r["L"], r["temperature"]), []).append(r)
    baseline = {
        (r["method"], r["temperature"], r["prompt_index"]): r for r in records if r["method"] in BASELINES
    }
    rows = []
    order = {m: i for i, m in enumerate(all_methods())}
    for (method, L, T), rs in sorted(groups.items(), key=lambda kv: (kv[0][2], order[kv[0][0]], kv[0][1] or 0)):
        row = {
            "method": method,
            "label": label(method),
            "L": L,
            "temperature": T,
            "prompts": len(rs),
            "seconds_per_100": _median([r["seconds_per_100"] for r in rs]),
            "new_tokens": sum(r["new_tokens"] for r in rs),
            "tokens_per_call": sum(r["new_tokens"] for r in rs) / max(sum(r["model_calls"] for r in rs), 1),
        }
        for base in BASELINES:
            ratios = [
                baseline[(base, T, r["prompt_index"])]["seconds_per_100"] / r["seconds_per_100"]
                for r in rs
                if (base, T, r["prompt_index"]) in baseline
            ]
            row[f"speedup_vs_{base}"] = _median(ratios)
        width = max((len(r["drafted"]) for r in rs), default=0)
        acc = []
        for i in range(width):
            d = sum(r["drafted"][i] for r in rs if len(r["drafted"]) > i)
            a = sum(r["accepted"][i] for r in rs if len(r["accepted"]) > i)
            acc.append(a / d if d else math.nan)
        row["acceptance"] = acc
        if T == 0:
            same = [
                r["tokens"] == baseline[("ar", T, r["prompt_index"])]["tokens"]
                for r in rs
                if ("ar", T, r["prompt_index"]) in baseline
            ]
            row["same_as_ar"] = sum(same) / len(same) if same else None
        else:
            row["same_as_ar"] = None
        row["predicted_speedup"] = None
        if latency is not None and method == "speculative":
            if draft_call_s is not None and acc and not any(math.isnan(a) for a in acc) and L + 1 <= latency.new_tokens[-1]:
                row["predicted_speedup"] = predicted_speculative_speedup(latency, acc, draft_call_s)
        elif latency is not None and all(r.get("call_sizes") for r in rs):
            # Per prompt, from the sizes of the calls it made; the median, like the measured ratio.
            row["predicted_speedup"] = _median([predicted_speedup_from_calls(latency, r["call_sizes"], r["new_tokens"]) for r in rs])
        rows.append(row)
    return rows


def _fmt(x, spec: str = ".2f") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return format(x, spec)


def format_markdown(rows: Sequence[dict]) -> str:
    """The summary as a markdown table (one row per method, L, T)."""
    lines = [
        "| method | L | T | prompts | s / 100 tok | × vs our AR | × vs HF generate | × vs HF prompt lookup | tokens / call | acceptance LA_1..L | same greedy tokens as AR | predicted × vs our AR |",  # noqa: E501 (a table row)
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        acc = " ".join(_fmt(a) for a in r["acceptance"]) or "–"
        same = "–" if r["same_as_ar"] is None else f"{100 * r['same_as_ar']:.0f} %"
        lines.append(
            f"| {r['label']} | {r['L'] if r['L'] is not None else '–'} | {r['temperature']:g} | {r['prompts']} | "
            f"{_fmt(r['seconds_per_100'])} | {_fmt(r['speedup_vs_ar'], '.3f')} | {_fmt(r['speedup_vs_hf'], '.3f')} | "
            f"{_fmt(r.get('speedup_vs_prompt-lookup'), '.3f')} | "
            f"{_fmt(r['tokens_per_call'], '.3f')} | {acc} | {same} | {_fmt(r['predicted_speedup'], '.3f')} |"
        )
    return "\n".join(lines)


def write_results(out_dir: str | Path, config: dict, rows: Sequence[dict], *, completed: bool = True, latency=None) -> None:
    """``summary.md``, ``summary.csv`` and ``results.json`` (config, summary, latency) in ``out_dir``."""
    import csv

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    header = f"<!-- {config.get('command', '')} -->\n" + ("" if completed else "**Interrupted: partial results.**\n\n")
    (out / "summary.md").write_text(header + format_markdown(rows) + "\n", encoding="utf-8")
    fields = [k for k in rows[0].keys()] if rows else []
    with open(out / "summary.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (" ".join(f"{a:.4f}" for a in v) if k == "acceptance" else v) for k, v in r.items()})
    payload = {"config": config, "completed": completed, "summary": list(rows)}
    if latency is not None:
        payload["latency"] = latency.to_dict()
    (out / "results.json").write_text(json.dumps(payload, indent=1), encoding="utf-8")


def load_records(path: str | Path) -> list[dict]:
    """Read ``records.jsonl`` back (every run, also from an interrupted benchmark)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
