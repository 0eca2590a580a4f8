"""Will PaSS pay on this machine? (``python -m pass_ref doctor``)

Speculative decoding trades more work per call for fewer calls. Whether that pays
depends on t(n), the cost of one forward pass over n new tokens, which depends on the
hardware and the dtype far more than on the model's weights: on a CPU with AVX-512 BF16
a bfloat16 call over 9 tokens can cost about as much as one over 1 token, while on a CPU
without it the same call costs several times more. So the answer must be measured here.

The doctor
1. reads the processor's relevant features (AVX2, AVX-512, AVX-512 BF16, AMX) or the GPU;
2. measures t(n)/t(1) for float32 and bfloat16 (n up to 32) on the model, and the memory
   bandwidth, to set t(1) against the weight-streaming bound (``bandwidth``);
3. decodes the first HumanEval prompts (4, as ``fastest`` does) greedily with every method,
   recording the size of every call (acceptance is a property of the weights and prompts,
   not of the dtype);
4. predicts each method's per-token speed-up from those call sizes and t(n), per prompt,
   and takes the median over prompts (``fastest``'s statistic), with the break-even acceptance;
5. recommends the configuration (method, L, dtype, eager or compiled) with the lowest
   predicted time per token, and compares it with the fastest plain decoding it measured
   (the lowest t(1) of any setup), not with plain decoding in the same dtype: a bfloat16
   method that beats bfloat16 decoding but not float32 decoding is no win for the user.

With ``compiled=True`` (``doctor --compiled``) it also measures t(n) on the compiled
static path (``pass_ref.static_model``) at the sizes the methods call with, so every
method is predicted eager and compiled; compilation takes about a minute per size. The
one-token call runs whichever of its frozen (prepacked) and plain-weight graphs was timed
faster here (``latency.choose_freezing``; the report says which). How many look-ahead tokens
two-call PaSS should read (``lookahead_choices``) is predicted there too, t(K + 1) interpolated
between the compiled sizes.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..config import DecodingConfig
from ..loop import decode
from ..methods import METHODS as TABLE
from ..methods import make_drafter
from .bandwidth import memory_bandwidth, streaming_bound, weight_bytes
from .bench import bench_options
from .latency import LatencyCurve, best_groups, best_num_lookahead, break_even, measure_forward_latency, predicted_seconds

CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")
ISA_LIMITS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")  # oneDNN's and ATen's instruction-set caps
DEFAULT_MODEL_LABEL = "default (SmolLM2-135M-Instruct)"  # how reports name the model when none was given
LATENCY_N = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 17, 21, 25, 32)


def machine_features(device: str = "cpu") -> dict:
    """The processor (or GPU) and the features that decide t(n)."""
    info = {"device": device, "torch": torch.__version__, "threads": torch.get_num_threads(), "platform": platform.platform()}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
        return info
    info["cpu"] = platform.processor() or platform.machine()
    flags: set[str] = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name") and info["cpu"] in ("", platform.machine()):
                info["cpu"] = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
    info["flags"] = {flag: flag in flags for flag in CPU_FLAGS} if flags else None
    capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
    info["torch_cpu_capability"] = capability() if capability else None
    # Kernels can be held below what the CPU offers (e.g. to stand in for an AVX2-only CPU).
    info["isa_limits"] = {k: os.environ[k] for k in ISA_LIMITS if os.environ.get(k)} or None
    return info


@dataclass
class MethodRun:
    """One method's greedy runs: what it produced and the size of every call it made."""

    name: str
    L: int | None
    new_tokens: int = 0
    calls: int = 0
    call_sizes: list[list[int]] = field(default_factory=list)  # per prompt
    tokens: list[int] = field(default_factory=list)  # new tokens, per prompt

    @property
    def tokens_per_call(self) -> float:
        return self.new_tokens / max(self.calls, 1)

    def predicted_speedup(self, curve: LatencyCurve) -> float:
        """Per-token speed-up over autoregressive decoding predicted from t(n): the median over prompts of each
        prompt's prediction, as ``fastest`` reports its measured ratios (pooled, one repetitive prompt would
        speak for all)."""
        if len(self.tokens) != len(self.call_sizes) or not self.tokens:
            raise ValueError(f"{self.name}: need the new tokens of every prompt ({len(self.tokens)}) for its call sizes "
                             f"({len(self.call_sizes)})")
        per_prompt = [n * curve.t(1) / predicted_seconds(curve, sizes) for n, sizes in zip(self.tokens, self.call_sizes)]
        return statistics.median(per_prompt)


def method_table(model, lookahead, L: int, *, groups=(0, 1), hybrid_groups=(0,), lookup_tokens: int = 8) -> dict:
    """The methods the doctor compares: label -> (draft size, generate(ids, max_new_tokens)).

    Every method of the table except controls ([UNK] look-ahead) and methods that need
    something the doctor does not have (a draft model).
    """
    options = bench_options(prompt_lookup_tokens=lookup_tokens, groups=groups, hybrid_groups=hybrid_groups)
    table = {}
    for method in TABLE.values():
        given = {k: v for k, v in options.get(method.name, {}).items() if k in method.options}
        if method.size == "num_lookahead":
            given["num_lookahead"] = L
        if method.control or any(given.get(name) is None for name in method.required):
            continue
        size = {**method.defaults, **given}.get(method.size) if method.size else None

        def run(ids, n, method=method, given=given):
            drafter = make_drafter(method.name, model, lookahead if method.needs_lookahead else None, **given)
            return decode(model, drafter, ids, DecodingConfig(max_new_tokens=n))

        table[method.label] = (size, run)
    return table


def record_calls(methods: dict, prompts, max_new_tokens: int, progress: bool = False) -> list[MethodRun]:
    """Run every method on every prompt (greedy) and keep the call sizes."""
    runs = {name: MethodRun(name, L) for name, (L, _) in methods.items()}
    items = [(name, ids) for ids in prompts for name in methods]
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="call sizes", leave=False)
    for name, ids in items:
        out = methods[name][1](ids, max_new_tokens)
        run = runs[name]
        run.new_tokens += out.stats.new_tokens
        run.calls += out.stats.model_calls
        run.call_sizes.append(list(out.stats.call_sizes))
        run.tokens.append(out.stats.new_tokens)
    return list(runs.values())


@dataclass
class DoctorReport:
    machine: dict
    curves: dict[str, LatencyCurve]  # setup ("float32", "bfloat16 compiled", ...) -> t(n)
    runs: list[MethodRun]
    L: int
    seconds: float
    bandwidth: float | None = None  # bytes per second of a large copy (``bandwidth.memory_bandwidth``)
    weights: dict[str, int] = field(default_factory=dict)  # dtype -> weight bytes
    acceptance: list[float] | None = None  # the set's measured per-position acceptance (for one-call groups)
    model: str = DEFAULT_MODEL_LABEL  # the model as named on the command line (``--model``)
    freezing: dict = field(default_factory=dict)  # compiled setup -> size -> its timed choice (``latency.choose_freezing``)
    autotuned: list[str] = field(default_factory=list)  # compiled setups whose matmuls were autotuned (``static_model``)

    def groups(self) -> dict[str, dict]:
        """Per setup: one-call PaSS's group set chosen from the set's acceptance and that setup's t(n) (``best_groups``)."""
        if not self.acceptance:
            return {}
        out = {}
        for setup, curve in self.curves.items():
            if curve.new_tokens[-1] >= self.L + 1:
                choice = best_groups(curve, self.acceptance)
                out[setup] = {"groups": list(choice.groups), "predicted": choice.predicted, "two_call": choice.two_call}
        return out

    def lookahead_choices(self) -> dict[str, dict]:
        """Per setup: how many of the set's L look-ahead tokens two-call PaSS should read (``best_num_lookahead``).

        Predicted from the set's measured acceptance and that setup's t(n); ``ms_per_token`` is
        t(1) over the predicted speed-up. The compiled curve has the sizes the doctor compiled
        (1, L + 1, ...), and ``fastest`` compiles every K + 1 when it chooses K, so there t(K + 1)
        is interpolated between the measured sizes (``interpolated``: True).
        """
        if not self.acceptance:
            return {}
        out = {}
        for setup, curve in self.curves.items():
            if self.L + 1 in curve.new_tokens:
                if curve.padded:
                    curve = curve.interpolated(range(1, self.L + 2))
                choice = best_num_lookahead(curve, self.acceptance[: self.L])
                out[setup] = {"num_lookahead": choice.num_lookahead, "predicted": choice.predicted, "every": choice.every,
                              "ms_per_token": 1e3 * curve.t(1) / choice.predicted, "interpolated": self.curves[setup].padded}
        return out

    def streaming(self) -> list[dict]:
        """Per dtype: weight bytes, the weight-streaming bound on t(1), measured t(1) and their ratio."""
        if not self.bandwidth:
            return []
        out = []
        for setup, curve in self.curves.items():
            size = self.weights[setup.split()[0]]
            bound, t1 = streaming_bound(size, self.bandwidth), curve.t(1)
            out.append({"dtype": setup, "weight_bytes": size, "bound_ms": 1e3 * bound, "t1_ms": 1e3 * t1, "t1_over_bound": t1 / bound})
        return out

    def fastest_plain(self) -> tuple[str, float]:
        """The setup whose plain decoding (one call per token, t(1)) is the fastest, and its ms per token."""
        setup = min(self.curves, key=lambda name: self.curves[name].t(1))
        return setup, 1e3 * self.curves[setup].t(1)

    def rows(self) -> list[dict]:
        """Per method and setup: tokens per call, predicted ms per token, × AR in that setup and × the fastest plain decoding."""
        out, (_, fastest_ms) = [], self.fastest_plain()
        for run in self.runs:
            for setup, curve in self.curves.items():
                speedup = run.predicted_speedup(curve)
                ms = 1e3 * curve.t(1) / speedup
                out.append({"method": run.name, "L": run.L, "dtype": setup, "tokens_per_call": run.tokens_per_call,
                            "predicted_speedup": speedup, "ms_per_token": ms, "vs_fastest_plain": fastest_ms / ms})
        return out

    def recommendation(self) -> dict:
        return min(self.rows(), key=lambda r: r["ms_per_token"])

    def verdict(self) -> list[str]:
        """The recommendation in words, against the fastest plain decoding; or why plain decoding wins here."""
        r, (plain_setup, plain_ms) = self.recommendation(), self.fastest_plain()
        drafting = [row for row in self.rows() if row["method"] != "autoregressive"]
        if r["method"] == "autoregressive" or not drafting or r["vs_fastest_plain"] <= 1.0:
            best = max(drafting, key=lambda row: row["vs_fastest_plain"]) if drafting else None
            lines = [f"**Recommendation:** plain decoding in {plain_setup} ({plain_ms:.1f} ms per token) is the fastest here."]
            if best is not None:
                curve = self.curves[best["dtype"]]
                lines.append(f"Why: the best drafting configuration, {best['method']} in {best['dtype']}, makes "
                             f"{best['tokens_per_call']:.2f} tokens per call, but its calls cost more than that buys: predicted "
                             f"{best['ms_per_token']:.1f} ms per token ({best['vs_fastest_plain']:.2f}× the fastest plain decoding; "
                             f"t(1) in {best['dtype']} is {1e3 * curve.t(1):.1f} ms).")
            return lines + self._fewer_lookahead(plain_ms, plain_ms)
        return [f"**Recommendation:** {r['method']}" + (f" (L or drafts = {r['L']})" if r["L"] else "")
                + f" in {r['dtype']}: predicted {r['ms_per_token']:.1f} ms per token, {r['vs_fastest_plain']:.2f}× the fastest plain "
                f"decoding measured here ({plain_setup}, {plain_ms:.1f} ms per token) and {r['predicted_speedup']:.2f}× plain decoding "
                f"in {r['dtype']}."] + self._fewer_lookahead(r["ms_per_token"], plain_ms)

    def _fewer_lookahead(self, best_ms: float, plain_ms: float) -> list[str]:
        """A line when reading fewer look-ahead tokens is predicted faster than ``best_ms`` (the runs above read all L)."""
        shorter = [(setup, c) for setup, c in self.lookahead_choices().items() if c["num_lookahead"] < self.L]
        if not shorter:
            return []
        setup, c = min(shorter, key=lambda item: item[1]["ms_per_token"])
        if c["ms_per_token"] >= best_ms:
            return []
        return [f"Also: two-call PaSS reading only [LA]_1..{c['num_lookahead']} of the set's {self.L} in {setup} is predicted "
                f"{c['ms_per_token']:.1f} ms per token ({plain_ms / c['ms_per_token']:.2f}× the fastest plain decoding), from the "
                f"set's stored acceptance rather than a run here (`python -m pass_ref fastest` chooses K the same way and "
                f"measures it)."]

    def to_dict(self) -> dict:
        return {"machine": self.machine, "model": self.model, "L": self.L, "seconds": self.seconds, "rows": self.rows(),
                "recommendation": self.recommendation(), "fastest_plain": self.fastest_plain(), "verdict": self.verdict(),
                "bandwidth": self.bandwidth, "streaming": self.streaming(), "acceptance": self.acceptance,
                "groups": self.groups(), "lookahead_choices": self.lookahead_choices(), "freezing": self.freezing,
                "autotuned": self.autotuned, "curves": {d: c.to_dict() for d, c in self.curves.items()},
                "runs": [asdict(r) for r in self.runs]}

    def format(self) -> str:
        m = self.machine
        lines = ["## This machine", "", f"Model: {self.model}"]
        if "gpu" in m:
            lines.append(f"GPU: {m['gpu']} (torch {m['torch']})")
        else:
            flags = m.get("flags") or {}
            have = ", ".join(f"{f} {'yes' if v else 'no'}" for f, v in flags.items()) or "unknown (no /proc/cpuinfo)"
            lines.append(f"CPU: {m['cpu']}; {m['threads']} threads; {have}; torch kernels: {m.get('torch_cpu_capability')}")
            if m.get("isa_limits"):
                lines.append("Kernels limited by " + " ".join(f"{k}={v}" for k, v in m["isa_limits"].items())
                             + ": the figures stand for a CPU without the instructions above that limit.")
        lines += ["", "## t(n) / t(1): the cost of one call over n new tokens", "",
                  "| dtype | t(1) ms | " + " | ".join(f"n={n}" for n in (2, 5, 9, 17, 25, 32)) + " |",
                  "|---|---|" + "---|" * 6]
        eager = {name: c for name, c in self.curves.items() if not c.padded}
        for dtype, c in eager.items():
            lines.append(f"| {dtype} | {1e3 * c.t(1):.1f} | " + " | ".join(f"{c.ratio(n):.2f}" for n in (2, 5, 9, 17, 25, 32)) + " |")
        for setup, c in self.curves.items():
            if c.padded:
                lines += ["", f"{setup} (a call is padded to the next size): "
                          + ", ".join(f"t({n}) = {1e3 * c.t(n):.1f} ms" for n in c.new_tokens)]
                if setup in self.autotuned:
                    lines.append("(its matmuls were autotuned at compile time: ATen's kernels against inductor's generated ones)")
                for n, v in self.freezing.get(setup, {}).items():
                    lines.append(f"(size {n} runs its {'frozen, prepacked' if v['frozen'] else 'plain-weight'} graph: "
                                 f"plain weights took {v['plain_over_frozen']:.2f}× the frozen graph's time here)")
        if self.streaming():
            lines += ["", f"## The memory limit: t(1) against the weight-streaming bound (copy bandwidth {self.bandwidth / 1e9:.1f} GB/s)",
                      "", "| dtype | weights MB | bound ms | t(1) ms | t(1) / bound |", "|---|---|---|---|---|"]
            for r in self.streaming():
                cells = (f"{r['weight_bytes'] / 1e6:.0f}", f"{r['bound_ms']:.1f}", f"{r['t1_ms']:.1f}", f"{r['t1_over_bound']:.1f}")
                lines.append(f"| {r['dtype']} | " + " | ".join(cells) + " |")
            lines += ["", "A ratio near 1: one-token decoding is as fast as memory allows, only fewer calls help. "
                      "A large ratio: time is lost inside the forward (kernels, dispatch), which compilation can win back."]
        lines += ["", f"## Break-even: accepted drafts per iteration needed to match autoregressive decoding (L = {self.L})", "",
                  "| dtype | two-call PaSS | one-call PaSS, 2 groups | prompt lookup, 8 drafts |", "|---|---|---|---|"]
        for dtype, c in self.curves.items():
            b = break_even(c, self.L, groups=2, candidates=8)
            lines.append(f"| {dtype} | {b['two_call']:.2f} | {b['fused']:.2f} | {b['prompt_lookup']:.2f} |")
        if self.groups():
            lines += ["", "## One-call PaSS: the groups to use here", "",
                      f"Chosen from the set's measured acceptance ({', '.join(f'{a:.2f}' for a in self.acceptance)}) and each t(n); "
                      "A = {} is the paper's two calls.", "",
                      "| setup | groups A | predicted × AR | two calls, predicted × AR |", "|---|---|---|---|"]
            for setup, g in self.groups().items():
                lines.append(f"| {setup} | {{{', '.join(map(str, g['groups']))}}} | {g['predicted']:.2f} | {g['two_call']:.2f} |")
        choices = self.lookahead_choices()
        if any(c["num_lookahead"] < self.L for c in choices.values()):
            lines += ["", "## Two-call PaSS: how many look-ahead tokens to read", "",
                      "The first K vectors of a set draft what they draft in the whole set; fewer inputs make each call "
                      "cheaper where every input costs time."
                      + (" On a compiled setup t(K + 1) is interpolated between the sizes compiled here "
                         "(`python -m pass_ref fastest` compiles each K + 1 it needs)."
                         if any(c["interpolated"] for c in choices.values()) else ""), "",
                      "| setup | K | predicted × AR | all L, predicted × AR |", "|---|---|---|---|"]
            for setup, c in choices.items():
                lines.append(f"| {setup} | {c['num_lookahead']} of {self.L} | {c['predicted']:.2f} | {c['every']:.2f} |")
        plain_setup, plain_ms = self.fastest_plain()
        lines += ["", f"## Predicted ms per token and × the fastest plain decoding ({plain_setup}, {plain_ms:.1f} ms per token)", "",
                  "Greedy, HumanEval prompts; in brackets: × plain decoding in the same setup.", "",
                  "| method | L or drafts | tokens / call | " + " | ".join(f"{d}" for d in self.curves) + " |",
                  "|---|---|---|" + "---|" * len(self.curves)]
        for run in self.runs:
            cells = []
            for c in self.curves.values():
                ms = 1e3 * c.t(1) / run.predicted_speedup(c)
                cells.append(f"{ms:.1f} ms: {plain_ms / ms:.2f}× ({run.predicted_speedup(c):.2f}×)")
            lines.append(f"| {run.name} | {run.L if run.L is not None else '–'} | {run.tokens_per_call:.2f} | " + " | ".join(cells) + " |")
        r = self.recommendation()
        lines += [""] + self.verdict()
        if r["dtype"].startswith("bfloat16") and r["method"] != "autoregressive":
            lines.append(
                "In bfloat16 a multi-token call rounds differently from a one-token call, so greedy outputs may differ "
                "from plain greedy decoding; sampling still follows the bfloat16 model's law exactly."
            )
        lines.append(f"\n(doctor ran in {self.seconds:.0f} s)")
        return "\n".join(lines)


def run_doctor(
    model_name=None,
    *,
    lookahead_dir=None,
    recipe: str = "extended",
    device: str = "cpu",
    L: int = 4,
    prompts: int = 4,
    max_new_tokens: int = 64,
    repeats: int = 5,
    dtypes=(torch.float32, torch.bfloat16),
    compiled: bool = False,
    autotune=(),
    progress: bool = True,
) -> DoctorReport:
    """Measure t(n) per dtype (and on the compiled static path) and the call sizes of every method; see the module docstring."""
    from ..lookahead import LookaheadEmbeddings
    from ..models import load_model
    from ..static import static_model
    from ..trained import load_lookahead
    from .data import humaneval_prompts
    from .latency import choose_freezing, measure_static_latency

    if prompts < 1 or max_new_tokens < 1 or repeats < 1:
        raise ValueError("prompts, max_new_tokens and repeats must be >= 1")
    names = [str(d).replace("torch.", "") for d in dtypes]
    if isinstance(autotune, str) or not set(autotune) <= set(names) or autotune and not compiled:
        raise ValueError(f"autotune names some of the dtypes {names} and needs compiled=True, got {autotune!r}")
    start = time.perf_counter()
    curves: dict[str, LatencyCurve] = {}
    weights: dict[str, int] = {}
    freezing: dict[str, dict] = {}
    runs = None
    bandwidth = memory_bandwidth(device)
    for dtype in dtypes:
        model, tokenizer = load_model(model_name, dtype=dtype, device=device)
        weights[str(dtype).replace("torch.", "")] = weight_bytes(model)
        curves[str(dtype).replace("torch.", "")] = measure_forward_latency(
            model, LATENCY_N, context=128, repeats=repeats, warmup=2, progress=progress
        )
        if runs is None:  # call sizes do not depend on the dtype (up to rounding): measure once
            if lookahead_dir is None:
                lookahead = load_lookahead("code", L, recipe=recipe, model=model)  # another model: pass lookahead_dir
            else:
                lookahead = LookaheadEmbeddings.from_pretrained(lookahead_dir, model=model)
            ids = [tokenizer(p, return_tensors="pt").input_ids.to(device) for p in humaneval_prompts(prompts)]
            with torch.inference_mode():
                runs = record_calls(method_table(model, lookahead, L), ids, max_new_tokens, progress)
        if compiled:  # the sizes method_table's calls have: a token, L + 1, 8 lookup drafts, 1 + L + 2 L (one call, 2 groups)
            name = str(dtype).replace("torch.", "")
            fast = static_model(model, sizes=(1, L + 1, 9, 1 + 3 * L), max_cache_len=256, autotune=name in autotune,
                                progress=progress)
            setup = f"{name} compiled"
            freezing[setup] = choose_freezing(fast, (1,), context=128, progress=progress)  # the one-token call: frozen or plain weights
            curves[setup] = measure_static_latency(fast, context=128, repeats=repeats)
            del fast  # its frozen graphs hold copies of the weights: free them before the next dtype compiles
        del model
    return DoctorReport(machine_features(device), curves, runs, L, time.perf_counter() - start, bandwidth, weights,
                        lookahead.measured_acceptance(L), str(model_name or DEFAULT_MODEL_LABEL), freezing,
                        [f"{name} compiled" for name in names if name in autotune])


def save_report(report: DoctorReport, path: str | Path) -> None:
    Path(path).write_text(json.dumps(report.to_dict(), indent=1), encoding="utf-8")
