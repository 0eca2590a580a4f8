"""Every method against the fastest plain decoding this machine offers for the same model.

A user who wants speed compares PaSS with the fastest way the machine decodes the model,
in any dtype, compiled or not, not with plain decoding in PaSS's own dtype.
``fastest_decoding`` loads the model once per dtype and runs, interleaved per prompt (the
order rotates, as in ``pass_ref.experiments.bench``):

    setup "eager"     HF generate; HF generate with transformers' static-cache recipe
                      (``hf-static``: compiled one-token step); our loop's methods
    setup "compiled"  our loop's methods on the compiled static path (``pass_ref.static``)

The plain-decoding rows (``PLAIN``: our autoregressive loop, HF generate, HF static) compete
for **the fastest autoregressive decoding**: the row with the lowest median ms per token
over every dtype and setup. Every row gets the median over prompts of
t_fastest(prompt) / t_row(prompt) (paired per prompt), and the same ratio against our
autoregressive loop in its own dtype and setup (a secondary column). Compilation happens
before any timing and is reported on its own. Greedy only: every run makes exactly
``max_new_tokens`` tokens.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from ..methods import METHODS as TABLE
from .bench import REFERENCE, BenchRunner, RunSpec, bench_options, label, record_sink, rotated

PLAIN = ("ar", "hf", "hf-static")  # plain decoding: the candidates for the fastest autoregressive baseline
EAGER_ONLY = ("hf", "hf-static")  # transformers' runs (hf-static compiles on its own)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class Row:
    """One line of the table: a method in a setup (dtype, compiled or not), with its look-ahead recipe."""

    dtype: str
    compiled: bool
    method: str
    recipe: str | None = None  # the look-ahead set's training recipe, for methods that need one

    @property
    def setup(self) -> str:
        return f"{self.dtype} {'compiled' if self.compiled else 'eager'}"

    @property
    def key(self) -> str:
        return f"{self.setup}/{self.method}" + (f"/{self.recipe}" if self.recipe else "")


def machine_slug(machine: dict) -> str:
    """A short name for the CPU's matrix instructions (what decides t(n)): amx, avx512-bf16, avx512 or avx2."""
    flags = {f for f, have in (machine.get("flags") or {}).items() if have}
    limited = machine.get("isa_limits")
    for flag, slug in (("amx_bf16", "amx"), ("avx512_bf16", "avx512-bf16"), ("avx512f", "avx512")):
        if flag in flags and not limited:
            return slug
    return "avx2" if "avx2" in flags or limited else "cpu"


def results_dir(model_name, machine: dict) -> Path:
    """Where ``--save`` writes: ``results/fastest/<model>-<cpu kind>`` (one folder per machine kind)."""
    model = "smollm2-135m" if model_name is None else Path(str(model_name)).name.lower().removesuffix(".gguf")
    return Path("results") / "fastest" / f"{model}-{machine_slug(machine)}"


AUTO_GROUPS = 2  # groups="auto" chooses among sets of at most this many groups (each call size is compiled)
CACHE_ROUNDING = 64  # static caches hold what the runs need, rounded up to a multiple of this
BRACKET_REPEATS = 2  # timings per size just before and just after each run (4 per size in all)
CHOICE_REPEATS = 9  # timings per call size in the probe groups="auto" chooses from (3 picked sets that lost)
FREEZE_CHOICE_SIZES = (1,)  # freeze="auto": sizes timed frozen against plain weights (larger calls gain most from prepacking)
CALIBRATION_SEED = 7  # the held-out prompt groups="auto" confirms a choice on


def static_sizes(methods: Sequence[str], L: int, groups, lookup_tokens: int = 8,
                 hybrid_groups: Sequence[int] = (0,), pass_lookahead: int | str | None = None) -> tuple[int, ...]:
    """The call sizes the compiled path needs: a token, PaSS's K + 1 (K = L, ``pass_lookahead``,
    or every K <= L for "auto"), one-call PaSS's 1 + L + G L (every G up to ``AUTO_GROUPS`` for
    ``groups="auto"``), prompt lookup's 1 + k, the one-call hybrid's 1 + max(k, L) + G' L
    (k lookup drafts, G' its groups)."""
    sizes = {1}
    for method in methods:
        if method == "pass" and pass_lookahead == "auto":
            sizes.update(K + 1 for K in range(1, L + 1))
        elif method == "pass" and pass_lookahead is not None:
            sizes.add(pass_lookahead + 1)
        elif method in ("pass", "pass-unk"):
            sizes.add(L + 1)
        elif method == "pass-fused":
            counts = range(AUTO_GROUPS + 1) if groups == "auto" else [L + 1 if groups is None else len(groups)]
            sizes.update(1 + L + G * L for G in counts)
        elif method == "lookup":
            sizes.add(1 + lookup_tokens)
        elif method == "hybrid":
            sizes.add(1 + max(lookup_tokens, L) + len(hybrid_groups) * L)
        elif method not in PLAIN:
            raise ValueError(f"fastest_decoding runs {PLAIN}, the look-ahead methods, lookup and hybrid, not {method!r}")
    return tuple(sorted(sizes))


def plan_rows(methods: Sequence[str], dtypes: Sequence[str], recipes: Sequence[str], compiled: bool) -> list[Row]:
    """Every (setup, method, recipe) to run; transformers' runs only in the eager setups."""
    unknown = [m for m in methods if m not in TABLE and m not in REFERENCE]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}")
    bad = [d for d in dtypes if d not in DTYPES]
    if bad or not dtypes:
        raise ValueError(f"dtypes must be among {list(DTYPES)}, got {list(dtypes)}")
    rows = []
    for dtype in dtypes:
        for fast in (False, True) if compiled else (False,):
            for method in methods:
                if fast and method in EAGER_ONLY:
                    continue
                needs = method in TABLE and TABLE[method].needs_lookahead
                rows += [Row(dtype, fast, method, r) for r in recipes] if needs else [Row(dtype, fast, method)]
    return rows


@dataclass
class FastestResult:
    rows: list[dict]  # one summary per Row, see ``summarize``
    records: list[dict]  # one per run
    compile_seconds: dict[str, float]  # per setup (ours: every size; hf-static: its first call)
    config: dict


def summarize(records: Sequence[dict]) -> list[dict]:
    """Medians per row, paired speed-ups against the fastest plain decoding and against our AR in the same setup."""
    by_row: dict[str, list[dict]] = {}
    for r in records:
        by_row.setdefault(r["row"], []).append(r)
    ms = {key: statistics.median(r["ms_per_token"] for r in rs) for key, rs in by_row.items()}
    plain = [key for key, rs in by_row.items() if rs[0]["method"] in PLAIN]
    fastest = min(plain, key=ms.get) if plain else None

    def paired(base: str | None, rs: list[dict]) -> float:
        if base is None:
            return math.nan
        times = {r["prompt_index"]: r["ms_per_token"] for r in by_row[base]}
        return statistics.median([times[r["prompt_index"]] / r["ms_per_token"] for r in rs if r["prompt_index"] in times] or [math.nan])

    summary = []
    for key, rs in by_row.items():
        first = rs[0]
        setup_ar = f"{first['setup']}/ar" if f"{first['setup']}/ar" in by_row else None
        ar_tokens = {r["prompt_index"]: r["tokens"] for r in by_row.get(setup_ar, [])}
        same = [r["tokens"] == ar_tokens[r["prompt_index"]] for r in rs if r["prompt_index"] in ar_tokens]
        drafted = sum(sum(r["drafted"]) for r in rs)
        ratios = [r["ms_per_token"] / r["predicted_ms_per_token"] for r in rs if r.get("predicted_ms_per_token")]
        outside = [(r["seconds"] - r["forward_seconds"]) / r["forward_seconds"] for r in rs if r.get("forward_seconds")]
        summary.append({
            "row": key, "setup": first["setup"], "method": first["method"], "label": label(first["method"]),
            "recipe": first["recipe"], "L": first["L"], "prompts": len(rs), "ms_per_token": ms[key],
            "tokens_per_call": sum(r["new_tokens"] for r in rs) / max(sum(r["model_calls"] for r in rs), 1),
            "accepted_per_draft": sum(sum(r["accepted"]) for r in rs) / drafted if drafted else None,
            "speedup_vs_fastest": paired(fastest, rs), "speedup_vs_setup_ar": paired(setup_ar, rs),
            "same_as_setup_ar": sum(same) / len(same) if same else None, "fastest_plain": key == fastest,
            "measured_over_predicted": statistics.median(ratios) if ratios else None,
            "outside_forward": statistics.median(outside) if outside else None,  # the loop's time outside the forward / forward
            **({"groups": first["groups"]} if "groups" in first else {}),  # one-call methods: the groups used
            **({"num_lookahead": first["num_lookahead"]} if "num_lookahead" in first else {}),  # the K of L read
        })
    return sorted(summary, key=lambda s: s["ms_per_token"])


def _fmt(x, spec: str) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def groups_note(row: dict) -> str:
    """How a row's one-call groups, or two-call PaSS's share of the set, read in a table: ", A = {0, 1}",
    ", A = {} (two calls)", ", every A", ", [LA]_1..2 of 4"."""
    if row.get("num_lookahead") is not None and row["num_lookahead"] != row.get("L"):
        return f", [LA]_1..{row['num_lookahead']} of {row['L']}"
    if "groups" not in row:
        return ""
    groups = row["groups"]
    if groups is None:
        return ", every A"
    return ", A = {" + ", ".join(map(str, groups)) + "}" + (" (two calls)" if not groups else "")


def outside(fraction) -> str:
    return "–" if fraction is None else f"{100 * fraction:.1f} %"


def format_markdown(rows: Sequence[dict]) -> str:
    """The summary, fastest row first; the fastest plain decoding in bold."""
    lines = ["| setup | method | look-ahead set | ms / token | × vs fastest plain decoding | × vs our AR, same setup | "
             "tokens / call | share of drafts accepted | greedy tokens = AR of its setup | measured / predicted | "
             "loop outside the forward |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        name = f"**{r['label']}**" if r["fastest_plain"] else r["label"] + groups_note(r)
        same = "–" if r["same_as_setup_ar"] is None else f"{100 * r['same_as_setup_ar']:.0f} %"
        lines.append(f"| {r['setup']} | {name} | {r['recipe'] or '–'} | {_fmt(r['ms_per_token'], '.1f')} | "
                     f"{_fmt(r['speedup_vs_fastest'], '.2f')} | {_fmt(r['speedup_vs_setup_ar'], '.2f')} | "
                     f"{_fmt(r['tokens_per_call'], '.2f')} | {_fmt(r['accepted_per_draft'], '.2f')} | {same} | "
                     f"{_fmt(r.get('measured_over_predicted'), '.2f')} | {outside(r.get('outside_forward'))} |")
    return "\n".join(lines)


LOOKAHEAD_ONLY = ("pass", "pass-fused")  # the paper's drafting (two calls, or one): no prompt lookup


def verdict(rows: Sequence[dict]) -> str:
    """The fastest plain decoding, the best look-ahead-only row (the paper's method) and the best drafting row, against it."""
    fastest = next((r for r in rows if r["fastest_plain"]), None)
    drafting = [r for r in rows if r["method"] not in PLAIN]
    if fastest is None or not drafting:
        return "nothing to compare: run plain decoding and at least one drafting method"

    def said(r: dict) -> str:
        return (f"{r['label']}{groups_note(r)}" + (f" ({r['recipe']} set)" if r["recipe"] else "")
                + f", {r['setup']}: {r['ms_per_token']:.1f} ms/token, {r['speedup_vs_fastest']:.2f}x the fastest")

    parts = [f"fastest plain decoding: {fastest['label']} ({fastest['setup']}), {fastest['ms_per_token']:.1f} ms/token"]
    paper = [r for r in drafting if r["method"] in LOOKAHEAD_ONLY]
    if paper:
        parts.append("best look-ahead drafting (the paper's method): " + said(max(paper, key=lambda r: r["speedup_vs_fastest"])))
    best = max(drafting, key=lambda r: r["speedup_vs_fastest"])
    if best["method"] not in LOOKAHEAD_ONLY:
        parts.append("best drafting overall: " + said(best))
    return "; ".join(parts) + ("" if best["speedup_vs_fastest"] > 1 else "; plain decoding is the fastest here")


@dataclass
class _Setup:
    """A dtype's model, eager or on the compiled static path, and its latency model (measured during the runs)."""

    name: str
    model: object
    samples: dict = field(default_factory=dict)  # n -> seconds of every probe call over n inputs
    prefill_s: dict = field(default_factory=dict)  # prompt index -> seconds of the prompt's call on the setup's own path
    curve: object = None  # LatencyCurve built from ``samples`` after the runs
    rounds: dict = field(default_factory=dict)  # prompt index -> the LatencyCurve probed just before that prompt's round

    def quick_curve(self, ns: Sequence[int], context: int, repeats: int = 3, warmup: int = 1):
        """A short t(n) probe (``repeats`` timings per n; the static path's sizes among ``ns`` when compiled)."""
        from .latency import measure_forward_latency, measure_static_latency

        if getattr(self.model, "pass_ref_static", None) is not None:
            return measure_static_latency(self.model, context=context, repeats=repeats, warmup=warmup, sizes=ns)
        return measure_forward_latency(self.model, ns, context=context, repeats=repeats, warmup=warmup)

    def bracket(self, ns: Sequence[int], context: int) -> dict:
        """``BRACKET_REPEATS`` timings of each size in ``ns``: taken just before and just after each run."""
        curve = self.quick_curve(ns, context, BRACKET_REPEATS, warmup=0)
        return {n: list(times) for n, times in zip(curve.new_tokens, curve.samples) if n in ns}

    def probe(self, prompt: list[int], prompt_index: int, ns: Sequence[int], context: int) -> None:
        """t(n) and this prompt's prefill, just before the prompt's round: what its runs are predicted from.

        Probes run between the prompts' rounds, so the machine's drift hits predictions and runs alike."""
        from ..cache import open_cache

        curve = self.quick_curve(ns, context)
        for n, times in zip(curve.new_tokens, curve.samples):
            self.samples.setdefault(n, []).extend(times)
        self.curve = self.rounds[prompt_index] = curve
        times = []
        with torch.inference_mode():
            for _ in range(3):
                cached = open_cache(self.model)  # the setup's own prompt call (compiled where a prefill size holds it)
                began = time.perf_counter()
                cached.forward(prompt, keep=1)
                times.append(time.perf_counter() - began)
        self.prefill_s[prompt_index] = statistics.median(times)

    def finish(self) -> None:
        """The latency curve reported for the setup: medians of every round's timings."""
        ns = sorted(self.samples)
        self.curve = dataclasses.replace(self.curve, new_tokens=ns, seconds=[statistics.median(self.samples[n]) for n in ns],
                                         samples=[self.samples[n] for n in ns], repeats=len(self.samples[ns[0]]))

    def predicted_ms(self, record: dict) -> float | None:
        """The latency model's ms per token for a run: its prompt's prefill + t(size) of every later call.

        t(n) is the median of the timings that bracket the run (``record["bracket"]``) where
        it has them, else the probe taken just before that prompt's round: on a shared
        machine the speed drifts by 10-20 % within seconds, so a prediction from timings
        a round away compares the machine's moments, not the loop with its forward passes."""
        sizes = record["call_sizes"]
        if record["method"] == "hf-static" or not sizes:
            return None  # transformers' compiled step is not what the probes time
        curve = self.rounds.get(record["prompt_index"], self.curve)
        near = {int(n): statistics.median(times) for n, times in record.get("bracket", {}).items()}
        if near:
            curve = dataclasses.replace(curve, seconds=[near.get(n, t) for n, t in zip(curve.new_tokens, curve.seconds)])
        seconds = self.prefill_s[record["prompt_index"]] + sum(curve.at(n) for n in sizes[1:])
        return 1000 * seconds / max(record["new_tokens"], 1)


def setups_bytes(model, dtypes: Sequence[str], sizes: Sequence[int], freeze, prefill_sizes: Sequence[int]) -> int:
    """Bytes the compiled setups of ``dtypes`` add once ``model`` (one of them) is loaded: each dtype's frozen graphs
    (``static.frozen_weight_bytes`` times ``FROZEN_OVERHEAD``, for the compilation) and the other dtypes' models."""
    from ..static import FROZEN_OVERHEAD, frozen_weight_bytes

    own = model.get_input_embeddings().weight.dtype
    params = sum(p.numel() for p in model.parameters())
    return sum(int(FROZEN_OVERHEAD * frozen_weight_bytes(model, sizes=sizes, freeze=freeze, prefill_sizes=prefill_sizes, dtype=DTYPES[d]))
               + (0 if DTYPES[d] == own else params * DTYPES[d].itemsize) for d in dtypes)


def fastest_decoding(
    name_or_path=None,
    *,
    methods: Sequence[str] = ("ar", "hf", "hf-static", "pass", "pass-fused", "lookup", "hybrid"),
    dtypes: Sequence[str] = ("float32", "bfloat16"),
    compiled: bool = True,
    recipes: Sequence[str] = ("paper", "extended"),
    L: int = 4,
    groups: Sequence[int] | str | None = "auto",
    pass_lookahead: int | str | None = "auto",
    lookup_tokens: int = 8,
    hybrid_groups: Sequence[int] = (0,),
    domain: str = "code",
    prompts: int = 4,
    max_new_tokens: int = 64,
    max_cache_len: int | None = None,
    freeze: bool | Sequence[int] | str = "auto",
    autotune: Sequence[str] = (),
    prefill_sizes: Sequence[int] = (),
    calibration: Sequence[int] | str | None = "heldout",
    out: str | Path | None = None,
    command: str = "",
    progress: bool = True,
) -> FastestResult:
    """Run ``methods`` in every dtype, eager and compiled, on HumanEval prompts; see the module docstring.

    Every run also gets the latency model's prediction (its prompt's prefill plus t(n) of
    each later call, t(n) measured in the same setup: through the static path when compiled,
    timed just before and just after the run), so the loop's cost beyond its forward passes
    shows as measured / predicted. Each record keeps every call's seconds (``call_seconds``).
    ``groups="auto"``: one-call PaSS's groups chosen per setup and set from the set's
    measured acceptance and a t(n) probe of the setup taken before the runs
    (``latency.best_groups``, at most ``AUTO_GROUPS`` groups, ``CHOICE_REPEATS`` timings per
    size); a set predicted to beat the two calls is kept only if it is also timed faster on a
    held-out calibration prompt of ``domain`` (``bench.confirm_groups``). The summary names
    the groups; ``config["group_choices"]`` says how each was chosen, ``config["choice_curves"]``
    the probe it was chosen from. ``pass_lookahead``: how many of the set's L look-ahead tokens
    two-call PaSS reads per drafting call: "auto" (per setup and set, from the same acceptance
    and probe, ``latency.best_num_lookahead``; a K < L is kept only if the calibration prompt
    does not time it slower; ``config["lookahead_choices"]``), None (all L) or a number. ``calibration``: that
    prompt's token ids, ``"heldout"`` (a held-out ``domain`` prompt, the default) or None (the
    prediction alone decides).
    ``freeze``: which compiled sizes are frozen (prepacked weights; ``static_model``): "auto"
    (all, except that each of ``FREEZE_CHOICE_SIZES`` keeps whichever of its frozen and
    plain-weight graphs ``latency.choose_freezing`` times faster in that setup;
    ``config["freezing"]``), True, False or a list of sizes.
    ``autotune``: the dtypes whose compiled setup autotunes its matmuls at compile time
    (``static_model(autotune=True)``: minutes more per size; ``config["autotune"]``).
    ``prefill_sizes``: compiled sizes for the prompt's call on the compiled path (``static_model``;
    none: the prompt runs eagerly at its exact length, as transformers' recipe runs it).
    ``max_cache_len``: the static caches' length, ours and transformers' recipe's; None: the
    longest prompt + ``max_new_tokens`` + the largest call, rounded up to ``CACHE_ROUNDING``
    (attention reads every preallocated position, so a longer cache slows every call).
    With ``out``: ``results.json`` (config, summary, compile times, machine), ``summary.md``
    and ``records.jsonl`` (one run per line, written as they come).
    """
    from ..models import load_model
    from ..static import check_memory, static_model
    from ..trained import load_lookahead
    from ..training.corpora import heldout_prompts
    from .bench_setup import task_prompts
    from .doctor import DEFAULT_MODEL_LABEL, machine_features
    from .latency import choose_freezing

    start = time.perf_counter()
    plan = plan_rows(methods, dtypes, recipes, compiled)
    if pass_lookahead not in (None, "auto") and not (isinstance(pass_lookahead, int) and 1 <= pass_lookahead <= L):
        raise ValueError(f"pass_lookahead must be 'auto', None or a number from 1 to L = {L}, got {pass_lookahead!r}")
    sizes = static_sizes(methods, L, groups, lookup_tokens, hybrid_groups, pass_lookahead)
    options = bench_options(groups=groups, prompt_lookup_tokens=lookup_tokens, hybrid_groups=hybrid_groups,
                            extra=None if pass_lookahead is None else {"pass": {"num_lookahead": pass_lookahead}})
    if not (freeze == "auto" or isinstance(freeze, bool) or (isinstance(freeze, Sequence) and not isinstance(freeze, str))):
        raise ValueError(f"freeze must be 'auto', True, False or a list of call sizes, got {freeze!r}")
    if isinstance(autotune, str) or not set(autotune) <= set(dtypes) or not compiled and autotune:
        raise ValueError(f"autotune names some of the compiled setups' dtypes {list(dtypes) if compiled else []}, got {autotune!r}")
    jobs, setups, compile_seconds, prompt_ids, choice_curves, freezing = [], {}, {}, None, {}, {}
    for dtype in dtypes:
        model, tokenizer = load_model(name_or_path, dtype=DTYPES[dtype])
        if compiled and dtype == dtypes[0]:  # every setup stays loaded to the end: refuse now, not after the first compile
            check_memory(setups_bytes(model, dtypes, sizes, True if freeze == "auto" else freeze, prefill_sizes), model.device,
                         f"the compiled setups of {', '.join(dtypes)} (their frozen graphs and the other dtypes' models)",
                         "run one dtype per process (--dtypes), freeze fewer sizes (--freeze) or drop --prefill-sizes")
        prompt_ids = prompt_ids or task_prompts(tokenizer, "humaneval", prompts)
        if calibration == "heldout":  # a prompt that is never benchmarked
            calibration = heldout_prompts(tokenizer, domain, 1, seed=CALIBRATION_SEED)[0].tolist()
        needed = max(map(len, prompt_ids)) + max_new_tokens + sizes[-1]
        if max_cache_len is None:  # what the runs need, rounded up: attention reads every preallocated position
            max_cache_len = CACHE_ROUNDING * -(-needed // CACHE_ROUNDING)
        if needed > max_cache_len:
            raise ValueError(f"the longest prompt + max_new_tokens + {sizes[-1]} positions exceed max_cache_len {max_cache_len}")
        sets = {r: {L: load_lookahead(domain, L, recipe=r, model=model)} for r in recipes}
        setups[f"{dtype} eager"] = _Setup(f"{dtype} eager", model)
        context = sorted(map(len, prompt_ids))[len(prompt_ids) // 2] + max_new_tokens // 2  # a typical cache mid-run
        if compiled:
            began = time.perf_counter()
            fast = static_model(model, sizes=sizes, max_cache_len=max_cache_len, freeze=True if freeze == "auto" else freeze,
                                autotune=dtype in autotune, prefill_sizes=prefill_sizes, progress=progress)
            compile_seconds[f"{dtype} compiled"] = time.perf_counter() - began
            if freeze == "auto":
                began = time.perf_counter()
                freezing[f"{dtype} compiled"] = choose_freezing(fast, [n for n in FREEZE_CHOICE_SIZES if n in sizes], context=context,
                                                                progress=progress)
                compile_seconds[f"{dtype} compiled, freezing choice"] = time.perf_counter() - began
            setups[f"{dtype} compiled"] = _Setup(f"{dtype} compiled", fast)
        choose = {name: setups[name].quick_curve(sorted({1, *sizes}), context, CHOICE_REPEATS)  # groups="auto" chooses from these
                  for name in (f"{dtype} eager", f"{dtype} compiled") if name in setups}
        choice_curves.update(choose)
        for row in [r for r in plan if r.dtype == dtype]:
            runner = BenchRunner(setups[row.setup].model, max_new_tokens=max_new_tokens, top_k=None, trained=sets.get(row.recipe),
                                 options=options, static_cache_len=max_cache_len, latency=choose[row.setup],
                                 calibration=calibration)
            spec = RunSpec(row.method, L if (row.method in TABLE and TABLE[row.method].size == "num_lookahead") else None, 0.0)
            jobs.append((row, runner, spec))
    # Warm-up: every job once on a short run, so that no compilation is timed (hf-static compiles here).
    grid, brackets = sorted({1, *sizes}), {}
    for row, runner, spec in jobs:
        warm = copy.copy(runner)
        warm.max_new_tokens = 8
        record = warm.run(spec, prompt_ids[0], 0)
        if row.method == "hf-static":
            compile_seconds[f"{row.setup} hf-static"] = record["seconds"]
        elif set(record["call_sizes"][1:]) == {1}:  # one token per call: only t(1) brackets its runs
            brackets[row.key] = [1]
        else:
            brackets[row.key] = grid
    records = _run_jobs(jobs, setups, prompt_ids, out, progress, probe=lambda setup, i: setup.probe(prompt_ids[i], i, grid, context),
                        bracket=lambda row: setups[row.setup].bracket(brackets[row.key], context) if row.key in brackets else {})
    for setup in setups.values():
        setup.finish()
    for record in records:
        record["predicted_ms_per_token"] = setups[record["setup"]].predicted_ms(record)
    rows = summarize(records)
    config = {
        "command": command, "model": str(name_or_path or DEFAULT_MODEL_LABEL), "methods": list(methods),
        "dtypes": list(dtypes), "compiled": compiled, "recipes": list(recipes), "L": L,
        "groups": groups if groups is None or isinstance(groups, str) else list(groups), "pass_lookahead": pass_lookahead,
        "lookup_tokens": lookup_tokens, "hybrid_groups": list(hybrid_groups),
        "domain": domain, "prompts": len(prompt_ids), "max_new_tokens": max_new_tokens, "max_cache_len": max_cache_len,
        "static_sizes": list(sizes), "freeze": freeze if isinstance(freeze, (bool, str)) else list(freeze),
        "freezing": freezing, "autotune": [d for d in dtypes if d in autotune], "prefill_sizes": list(prefill_sizes),
        "frozen_sizes": {name: sorted(s.model.pass_ref_static.frozen) for name, s in setups.items()
                         if getattr(s.model, "pass_ref_static", None) is not None},
        "prefill_calls": {name: {str(n): c for n, c in s.model.pass_ref_static.prefill_calls_by_size.items()}
                          for name, s in setups.items() if getattr(s.model, "pass_ref_static", None) is not None},
        "compile_seconds": {k: round(v, 1) for k, v in compile_seconds.items()},
        "latency_context": context, "curves": {name: s.curve.to_dict() for name, s in setups.items()},
        "choice_curves": {name: {"new_tokens": list(c.new_tokens), "seconds": list(c.seconds)} for name, c in choice_curves.items()},
        "group_choices": {f"{row.key} L={key[1]}": {k: list(v) if isinstance(v, tuple) else v for k, v in note.items()}
                          for row, runner, _ in jobs for key, note in runner.group_choices.items()},
        "lookahead_choices": {f"{row.key} L={key[1]}": note for row, runner, _ in jobs
                              for key, note in runner.lookahead_choices.items()},
        "minutes": round((time.perf_counter() - start) / 60, 2), "machine": machine_features("cpu"),
    }
    if out is not None:
        (Path(out) / "summary.md").write_text(f"<!-- {command} -->\n{format_markdown(rows)}\n\n{verdict(rows)}\n", encoding="utf-8")
        (Path(out) / "results.json").write_text(json.dumps({"config": config, "summary": rows}, indent=1), encoding="utf-8")
    return FastestResult(rows=rows, records=records, compile_seconds=compile_seconds, config=config)


def _run_jobs(jobs, setups: dict, prompt_ids, out, progress: bool, probe, bracket=lambda row: {}) -> list[dict]:
    """Every job on every prompt, in rotated order, each prompt's round opened by ``probe(setup, i)`` of every setup;
    ``bracket(row)`` (size -> seconds, empty for a row not bracketed) is timed just before and just after each run
    of ``row`` and kept in the record. Records are appended to ``out/records.jsonl`` as they come."""
    records = []
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
    path = None if out is None else Path(out) / "records.jsonl"
    with record_sink(path, len(prompt_ids) * len(jobs), "fastest", progress) as keep:
        for i, prompt in enumerate(prompt_ids):
            for setup in rotated(list(setups.values()), i):
                probe(setup, i)
            for row, runner, spec in rotated(jobs, i):
                before = bracket(row)
                record = runner.run(spec, prompt, i)
                if before:
                    record["bracket"] = {n: before[n] + times for n, times in bracket(row).items()}
                record.update(row=row.key, setup=row.setup, dtype=row.dtype, compiled=row.compiled, recipe=row.recipe,
                              ms_per_token=1000 * record["seconds"] / max(record["new_tokens"], 1))
                records.append(record)
                keep(record, f"{row.key} {record['ms_per_token']:.1f} ms/token")
    return records
