"""Command line: ``python -m pass_ref {generate, demo, overhead, train, bench, fastest, humaneval, doctor, grade}``.

    python -m pass_ref generate "def add(a, b):" --method pass --lookahead 4
    python -m pass_ref demo            # what `make demo` runs
    python -m pass_ref overhead        # Python-side cost of the loops vs model forward time
    python -m pass_ref train --domain code --lookahead 4 --steps 150 --out runs/code-L4
    python -m pass_ref bench --task humaneval --prompts 10 --out runs/bench
    python -m pass_ref fastest --out runs/fastest   # every method vs the fastest plain decoding (any dtype, compiled)
    python -m pass_ref humaneval --pass1-problems 164 --pass10-problems 20 --out runs/table2
    python -m pass_ref doctor          # will PaSS pay on this machine? (t(n), predictions, advice)
    python -m pass_ref grade submissions/   # run assignment notebooks headless, print a score table
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

from .config import DecodingConfig
from .generate import autoregressive_generate, pass_generate
from .lookahead import LookaheadEmbeddings
from .loop import decode
from .methods import METHODS, make_drafter
from .models import load_model, truncated_draft_model
from .trained import load_lookahead
from .viz import highlight_terminal, legend_terminal, summary_line

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float64": torch.float64}


def resolve_lookahead(spec: str, model) -> LookaheadEmbeddings:
    """``--lookahead`` value: an integer L (untrained [UNK] vectors) or a saved directory."""
    if spec.isdigit():
        return LookaheadEmbeddings.from_token(model, int(spec))
    path = Path(spec)
    if not path.is_dir():
        raise SystemExit(f"--lookahead must be an integer L or a directory saved by save_pretrained, got {spec!r}")
    return LookaheadEmbeddings.from_pretrained(path, model=model)


def _encode(tokenizer, prompt: str) -> torch.Tensor:
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    if ids.shape[1] == 0:
        raise SystemExit("the prompt encodes to zero tokens")
    return ids


def cmd_generate(args) -> int:
    """Complete a prompt with any method of the table and highlight where each token came from."""
    from .experiments.timing import timed

    method = METHODS[args.method]
    model, tokenizer = load_model(args.model, dtype=DTYPES[args.dtype], device=args.device)
    ids = _encode(tokenizer, args.prompt)
    config = DecodingConfig.from_options(
        model, max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
        eos_token_id=None if args.ignore_eos else tokenizer.eos_token_id, seed=args.seed,
    )
    options = {}
    if "num_lookahead" in method.options and not method.needs_lookahead:  # the [UNK] baseline: --lookahead is its L
        if not args.lookahead.isdigit():
            raise ValueError(f"--method {method.name} takes --lookahead L (an integer), got {args.lookahead!r}")
        options["num_lookahead"] = int(args.lookahead)
    if "num_draft_tokens" in method.options:
        options["num_draft_tokens"] = args.num_draft_tokens
    if "draft_model" in method.options:
        options["draft_model"] = truncated_draft_model(model, args.draft_layers)
    lookahead = resolve_lookahead(args.lookahead, model) if method.needs_lookahead else None
    out, timing = timed(lambda: decode(model, make_drafter(method.name, model, lookahead, **options), ids, config), model)
    print(args.prompt + highlight_terminal(out, tokenizer))
    print(legend_terminal())
    print(summary_line(out, method.name, seconds=timing.wall_s))
    return 0


def cmd_demo(args) -> int:
    from .experiments.data import humaneval_prompts

    prompt = humaneval_prompts()[args.problem]
    print("Loading the default model (SmolLM2-135M-Instruct, float32) ...")
    model, tokenizer = load_model(args.model, dtype=torch.float32)
    ids = _encode(tokenizer, prompt)
    lookahead = load_lookahead("code", 4, model=model)
    greedy = lookahead.metadata.get("heldout_greedy", {})
    print(
        f"Look-ahead embeddings: the shipped code set, L = 4 ({lookahead.metadata.get('shipped_from', 'trained')}; "
        f"held-out greedy acceptance {greedy.get('acceptance')}).\n"
    )
    kwargs = dict(max_new_tokens=args.max_new_tokens, eos_token_id=tokenizer.eos_token_id)
    ar = autoregressive_generate(model, ids, **kwargs)
    ps = pass_generate(model, lookahead, ids, **kwargs)
    unk = pass_generate(model, LookaheadEmbeddings.from_token(model, 4), ids, **kwargs)
    print("=" * 30 + " HumanEval prompt " + "=" * 30)
    print(prompt)
    print("=" * 30 + " autoregressive (greedy) " + "=" * 23)
    print(tokenizer.decode(ar.new_tokens))
    print("=" * 30 + " PaSS, trained L = 4 (greedy) " + "=" * 18)
    print(highlight_terminal(ps, tokenizer))
    print(legend_terminal())
    print("=" * 78)
    same = torch.equal(ar.new_tokens, ps.new_tokens) and torch.equal(ar.new_tokens, unk.new_tokens)
    print(f"Greedy PaSS (trained and [UNK]) produced exactly the autoregressive tokens (float32): {same}")
    print(f"autoregressive:       {ar.stats.tokens_per_call:.3f} tokens per model call ({summary_line(ar)})")
    print(f"PaSS trained L=4:     {ps.stats.tokens_per_call:.3f} tokens per model call ({summary_line(ps)})")
    print(f"PaSS [UNK] L=4:       {unk.stats.tokens_per_call:.3f} tokens per model call ({summary_line(unk)})")
    if not args.no_speed:
        print("=" * 30 + " speed on this machine " + "=" * 25)
        print("\n".join(demo_speed(args.model, model, lookahead, ids, [ar, ps], max_new_tokens=args.max_new_tokens)))
    return 0 if same else 1


def demo_speed(name, model, lookahead, ids, outputs, *, max_new_tokens: int) -> list[str]:
    """Does PaSS pay here? A few-second t(n) probe in float32 and bfloat16 (eager), the calls the demo's runs made,
    and the doctor's verdict against the fastest plain decoding; then where to look further."""
    from .experiments.doctor import DoctorReport, MethodRun, machine_features
    from .experiments.latency import measure_forward_latency

    one_call = pass_generate(model, lookahead, ids, max_new_tokens=max_new_tokens, fused=True, groups=[0, 1])
    runs = []
    for label, out in (("autoregressive", outputs[0]), ("PaSS (two calls)", outputs[1]), ("PaSS (one call)", one_call)):
        runs.append(MethodRun(label, None if label == "autoregressive" else 4, out.stats.new_tokens, out.stats.model_calls,
                              [list(out.stats.call_sizes)], [out.stats.new_tokens]))
    sizes = sorted({n for run in runs for n in run.call_sizes[0][1:]} | {1})
    curves = {"float32": measure_forward_latency(model, sizes, context=128, repeats=3, warmup=1)}
    bf16, _ = load_model(name, dtype=torch.bfloat16)
    curves["bfloat16"] = measure_forward_latency(bf16, sizes, context=128, repeats=3, warmup=1)
    report = DoctorReport(machine_features("cpu"), curves, runs, 4, 0.0)
    lines = [f"A quick probe (eager t(n), {len(sizes)} sizes, 3 timings each): t(1) = "
             + ", ".join(f"{1e3 * c.t(1):.1f} ms in {d}" for d, c in curves.items()) + "."]
    lines += [line.replace("**", "") for line in report.verdict()]
    lines.append("Where PaSS pays: `make fastest` times every method against the fastest plain decoding here, "
                 "in both dtypes and on the compiled static path (about 10 min); `make fastest-qwen` does it at "
                 "Qwen2.5-Coder-0.5B scale; measured tables: docs/RESULTS.md.")
    return lines


def cmd_overhead(args) -> int:
    """Per-iteration wall time vs time inside model forward passes, for every loop (the doctor's methods)."""
    import json

    from .experiments.data import humaneval_prompts
    from .experiments.doctor import machine_features, method_table
    from .experiments.timing import timed

    model, tokenizer = load_model(args.model, dtype=DTYPES[args.dtype])
    lookahead = (
        load_lookahead("code", args.lookahead, recipe=args.recipe, model=model)
        if args.model is None
        else LookaheadEmbeddings.from_token(model, args.lookahead)
    )
    methods = method_table(model, lookahead, args.lookahead)
    rows: dict[str, list] = {name: [] for name in methods}
    for prompt in humaneval_prompts(args.prompts):
        ids = _encode(tokenizer, prompt)
        for name, (_, run) in methods.items():
            out, t = timed(lambda run=run, ids=ids: run(ids, args.max_new_tokens), model)
            s = out.stats
            rows[name].append((t.wall_s / s.iterations, t.forward_s / s.iterations, t.overhead_fraction, s.calls_per_token))
    print(f"{args.dtype}, {args.prompts} HumanEval prompts x {args.max_new_tokens} tokens, medians over prompts")
    print(f"{'method':<20}{'wall ms/iter':>14}{'forward ms/iter':>17}{'overhead':>10}{'calls/token':>13}")
    table = {}
    for name, values in rows.items():
        wall, fwd, over, cpt = (statistics.median(v[i] for v in values) for i in range(4))
        table[name] = {"wall_ms_per_iteration": wall * 1e3, "forward_ms_per_iteration": fwd * 1e3, "overhead": over, "calls_per_token": cpt}
        print(f"{name:<20}{wall * 1e3:>14.2f}{fwd * 1e3:>17.2f}{over:>10.1%}{cpt:>13.3f}")
    if args.out:
        payload = {
            "command": "python -m pass_ref " + " ".join(sys.argv[1:]),
            "dtype": args.dtype,
            "prompts": args.prompts,
            "max_new_tokens": args.max_new_tokens,
            "L": args.lookahead,
            "machine": machine_features("cpu"),
            "rows": table,
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(payload, indent=1), encoding="utf-8")
    return 0


def cmd_train(args) -> int:
    """Train look-ahead embeddings on an offline corpus, evaluate them on held-out data, save them."""
    import json
    import shutil
    import time

    from .experiments.evaluation import heldout_report
    from .training.corpora import load_corpus, tokenize_windows
    from .training.train import TrainConfig, train_lookahead

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    config = TrainConfig(
        num_lookahead=args.lookahead,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup=args.warmup if args.warmup is not None else args.steps // 5,
        seq_len=args.seq_len,
        blocks_per_sequence=args.blocks,
        insertion=args.insertion,
        shared=args.shared,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        init=args.init,
        targets=args.targets,
        data=args.data,
        distill_windows=args.distill_windows,
        deep=args.deep,
        eval_every=args.eval_every,
        patience=args.patience,
    )
    model, tokenizer = load_model(args.model, dtype=DTYPES[args.dtype], device=args.device)
    corpus = load_corpus(args.domain, "train")
    windows = tokenize_windows(tokenizer, corpus, config.seq_len)
    print(f"{args.domain}: {len(corpus)} training documents -> {tuple(windows.shape)} windows; L={config.num_lookahead}")
    validation = None
    if config.eval_every:  # held-out windows after the ones the final report scores: early stopping never sees those
        heldout = tokenize_windows(tokenizer, load_corpus(args.domain, "heldout"), config.seq_len)
        validation = heldout[args.eval_windows : args.eval_windows + args.validation_windows]
        if validation.shape[0] == 0:
            raise ValueError(f"the held-out split has {heldout.shape[0]} windows, none left for validation after --eval-windows")
    partial = Path(f"{out}.partial")
    partial.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    lookahead, history = train_lookahead(model, tokenizer, windows, config, checkpoint=partial / "state.pt", validation=validation)
    minutes = (time.perf_counter() - start) / 60
    report = heldout_report(
        model, tokenizer, lookahead, args.domain, seq_len=config.seq_len, windows=args.eval_windows, prompts=args.eval_prompts,
        new_tokens=args.eval_tokens, seed=args.seed,
    )
    lookahead.metadata.update(
        {
            "corpus": corpus.describe(),
            "train_windows": int(windows.shape[0]),
            "train_minutes": round(minutes, 2),
            "dtype": args.dtype,
            **report,
            "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
            "command": f"python -m pass_ref train --domain {args.domain} --lookahead {args.lookahead} --steps {args.steps} "
            f"--seed {args.seed} --init {args.init} --targets {args.targets} --data {args.data} "
            f"--distill-windows {args.distill_windows} {'--deep' if args.deep else '--no-deep'} --dtype {args.dtype}"
            f" --blocks {args.blocks} --insertion {args.insertion}" + (" --shared" if args.shared else "")
            + (f" --eval-every {args.eval_every} --patience {args.patience}" if args.eval_every else "")
            + (f" --model {args.model}" if args.model else "") + " --out DIR",
        }
    )
    if out.exists():
        shutil.rmtree(out)
    lookahead.save_pretrained(out)
    history_json = {"loss": history.loss, "accuracy": history.accuracy, "heldout_loss": report["heldout_loss"]}
    if config.eval_every:
        history_json.update(validation=history.validation, best_step=history.best_step, stopped_at=history.stopped_at)
    (out / "history.json").write_text(json.dumps(history_json) + "\n")
    shutil.rmtree(partial)
    greedy = report["heldout_greedy"]
    print(
        f"trained in {minutes:.1f} min; held-out loss {report['heldout_loss']:.3f}, "
        f"top-1 accuracy per [LA]_i {report['heldout_top1_accuracy']}"
    )
    print(
        f"greedy PaSS on {greedy['prompts']} held-out prompts: acceptance {greedy['acceptance']}, "
        f"{greedy['tokens_per_call']:.3f} tokens per model call"
    )
    from .training.recipes import deviations_table

    print("where this recipe departs from the paper's:\n" + deviations_table(config, corpus=args.domain))
    print(f"saved to {out}")
    return 0


def _number_list(text: str, kind=float) -> list:
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("the list is empty")
    return values


def _group_set(text: str):
    """--groups: "auto" (chosen from the set's acceptance and this machine's t(n)), "all", "none" (two calls) or 0,1,..."""
    if text in ("auto", "all", "none"):
        return {"auto": "auto", "all": None, "none": ()}[text]
    return _number_list(text, int)


def _pass_lookahead(text: str):
    """--pass-lookahead: "auto", "all" (every look-ahead token of the set) or a positive number."""
    if text in ("auto", "all"):
        return {"auto": "auto", "all": None}[text]
    return positive_int(text)


def _freeze(text: str):
    """--freeze: "auto" (the one-token graph timed frozen against plain weights), "all", "none" or sizes 5,9,..."""
    if text in ("auto", "all", "none"):
        return {"auto": "auto", "all": True, "none": False}[text]
    return _number_list(text, int)


def cmd_bench(args) -> int:
    """Every method on the same prompts, interleaved; table, CSV/JSON and figures under --out."""
    from .experiments.bench import format_markdown
    from .experiments.bench_setup import benchmark, trained_lookaheads

    if args.quick:
        args.prompts = args.prompts or 3
        args.max_new_tokens = args.max_new_tokens or 96
    args.prompts = args.prompts or 20
    args.max_new_tokens = args.max_new_tokens or 256
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda but torch sees no CUDA device")
    model, tokenizer = load_model(args.model, dtype=DTYPES[args.dtype], device=args.device)
    wants_trained = any(METHODS[m].needs_lookahead for m in args.methods if m in METHODS)
    trained = trained_lookaheads(model, args.task, args.lookahead, args.trained, args.recipe) if wants_trained else None
    command = "python -m pass_ref " + " ".join(sys.argv[1:]) if args.command_line is None else args.command_line
    result = benchmark(
        model,
        tokenizer,
        task=args.task,
        prompts=args.prompts,
        max_new_tokens=args.max_new_tokens,
        lookaheads=args.lookahead,
        unk_lookaheads=args.unk_lookahead,
        temperatures=args.temperature,
        top_k=args.top_k,
        methods=args.methods,
        num_draft_tokens=args.num_draft_tokens,
        draft_layers=args.draft_layers,
        prompt_lookup_tokens=args.prompt_lookup_tokens,
        groups=args.groups,
        hybrid_groups=args.hybrid_groups,
        trained=trained,
        recipe=args.recipe,
        latency=not args.no_latency,
        out=args.out,
        command=command,
        seed=args.seed,
    )
    print(format_markdown(result.rows))
    status = "complete" if result.completed else "INTERRUPTED (partial results saved)"
    print(
        f"{args.task}: {args.prompts} prompts x {args.max_new_tokens} tokens, {args.dtype} on {args.device}; "
        f"{result.minutes:.1f} min, {status}"
    )
    if args.out:
        print(f"written to {args.out}/ (summary.md, summary.csv, results.json, records.jsonl, {len(result.figures)} figures)")
    return 0 if result.completed else 130


def cmd_humaneval(args) -> int:
    """The paper's Table 2: pass@1 (T = 0.1) and pass@10 (T = 0.8), PaSS vs autoregressive."""
    from .experiments.humaneval import format_table2, run_table2

    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda but torch sees no CUDA device")
    problems = {name: n for name, n in (("pass@1", args.pass1_problems), ("pass@10", args.pass10_problems)) if n}
    if not problems:
        raise ValueError("give --pass1-problems and/or --pass10-problems > 0")
    if args.lookahead is None and args.model is not None:
        raise ValueError("--lookahead DIR is needed for a model other than the default (its own trained set)")
    from .experiments.bench_setup import trained_lookaheads

    model, tokenizer = load_model(args.model, dtype=DTYPES[args.dtype], device=args.device)

    lookahead = trained_lookaheads(model, "humaneval", [args.num_lookahead], args.lookahead, args.recipe)[args.num_lookahead]
    command = "python -m pass_ref " + " ".join(sys.argv[1:])
    tables = run_table2(
        model,
        tokenizer,
        lookahead,
        args.out,
        problems=problems,
        max_new_tokens=args.max_new_tokens,
        top_k=args.top_k,
        timeout=args.timeout,
        seed=args.seed,
        model_name=args.model or "SmolLM2-135M-Instruct",
        command=command,
    )
    print(format_table2(tables, args.model or "SmolLM2-135M-Instruct"))
    print(f"written to {args.out}/ (completions.jsonl, table2.json, table2.md)")
    return 0


def cmd_fastest(args) -> int:
    """Every method, every dtype, eager and compiled, against the fastest plain decoding of the model."""
    from .experiments.fastest import fastest_decoding, format_markdown, verdict

    command = "python -m pass_ref " + " ".join(sys.argv[1:])
    if args.save:
        from .experiments.doctor import machine_features
        from .experiments.fastest import results_dir

        args.out = args.out or str(results_dir(args.model, machine_features("cpu")))
    result = fastest_decoding(args.model, methods=args.methods, dtypes=args.dtypes, compiled=not args.eager_only,
                              recipes=args.recipes, L=args.num_lookahead, groups=args.groups, pass_lookahead=args.pass_lookahead,
                              lookup_tokens=args.lookup_tokens,
                              prompts=args.prompts, max_new_tokens=args.max_new_tokens, max_cache_len=args.max_cache_len,
                              freeze=args.freeze, autotune=args.autotune, prefill_sizes=args.prefill_sizes, out=args.out, command=command)
    print(format_markdown(result.rows))
    print(verdict(result.rows))
    compile_s = ", ".join(f"{k} {v:.0f} s" for k, v in result.compile_seconds.items())
    print(f"compilation (not timed above): {compile_s or 'none'}; {result.config['minutes']:.1f} min in all")
    if args.out:
        print(f"written to {args.out}/ (summary.md, results.json, records.jsonl)")
    return 0


def cmd_doctor(args) -> int:
    """t(n) per dtype, every method's call sizes, predicted speed-ups and a recommendation."""
    from .experiments.doctor import run_doctor, save_report

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda but torch sees no CUDA device")
    report = run_doctor(args.model, lookahead_dir=args.lookahead, recipe=args.recipe, device=args.device, L=args.num_lookahead,
                        prompts=args.prompts, max_new_tokens=args.max_new_tokens, repeats=args.repeats, compiled=args.compiled,
                        autotune=args.autotune)
    print(report.format())
    if args.out:
        save_report(report, args.out)
        print(f"written to {args.out}")
    return 0


def cmd_grade(args) -> int:
    """Run submitted assignment notebooks headless and print a score table."""
    from .course.grading import format_failures, format_scores, grade_path

    print("Submissions run as code with your rights: grade untrusted ones in a container or as a throwaway user.",
          file=sys.stderr)
    submissions = grade_path(args.path, timeout=args.timeout, jobs=args.jobs)
    print(format_scores(submissions))
    failures = format_failures(submissions)
    if failures:
        print("\nWhat failed:\n" + failures)
    return 0


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (sizes of a run)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from .training.train import TrainConfig

    parser = argparse.ArgumentParser(prog="python -m pass_ref", description="PaSS: parallel speculative sampling")
    parser.add_argument("--model", default=None, help="model id, directory or .gguf (default: SmolLM2-135M-Instruct)")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="complete a prompt and highlight accepted drafts")
    gen.add_argument("prompt")
    gen.add_argument("--method", choices=list(METHODS), default="pass", help="a method of the table (pass_ref.METHODS)")
    gen.add_argument("--lookahead", default="4", help="L (untrained [UNK] vectors) or a saved directory")
    gen.add_argument("--temperature", type=float, default=0.0)
    gen.add_argument("--top-k", type=positive_int, default=None)
    gen.add_argument("--top-p", type=float, default=None)
    gen.add_argument("--max-new-tokens", type=int, default=64)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    gen.add_argument("--device", default="cpu")
    gen.add_argument("--num-draft-tokens", type=positive_int, default=4, help="drafts per iteration for --method speculative / lookup")
    gen.add_argument("--draft-layers", type=positive_int, default=8, help="layers kept in the self-speculative draft model")
    gen.add_argument("--ignore-eos", action="store_true", help="always generate --max-new-tokens tokens")
    gen.set_defaults(func=cmd_generate)

    demo = sub.add_parser("demo", help="autoregressive vs PaSS on a HumanEval prompt, with the exactness check")
    demo.add_argument("--no-speed", action="store_true", help="skip the few-second speed probe and its verdict")
    demo.add_argument("--problem", type=int, default=0, help="HumanEval problem index")
    demo.add_argument("--max-new-tokens", type=int, default=64)
    demo.set_defaults(func=cmd_demo)

    over = sub.add_parser("overhead", help="Python overhead of the decoding loops vs model forward time")
    over.add_argument("--prompts", type=positive_int, default=5)
    over.add_argument("--max-new-tokens", type=positive_int, default=64)
    over.add_argument("--lookahead", type=positive_int, default=4)
    over.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    over.add_argument("--out", default=None, help="write the table as JSON")
    over.add_argument("--recipe", choices=["paper", "extended"], default="extended", help="which shipped code set")
    over.set_defaults(func=cmd_overhead)

    tr = sub.add_parser("train", help="train look-ahead embeddings on the offline code or text corpus")
    tr.add_argument("--domain", choices=["code", "text"], required=True)
    tr.add_argument("--lookahead", type=positive_int, required=True, help="L, the number of look-ahead embeddings")
    tr.add_argument("--steps", type=positive_int, default=150)
    tr.add_argument("--out", required=True, help="output directory (refused if it exists, unless --overwrite)")
    tr.add_argument("--overwrite", action="store_true")
    tr.add_argument("--batch-size", type=positive_int, default=8)
    tr.add_argument("--lr", type=float, default=0.01)
    tr.add_argument("--warmup", type=int, default=None, help="warm-up steps (default: 20%% of --steps, as in the paper)")
    tr.add_argument("--seq-len", type=positive_int, default=128)
    tr.add_argument("--blocks", type=positive_int, default=16, help="insertion blocks per sequence sharing one masked pass")
    tr.add_argument(
        "--insertion", choices=["sequence", "batch"], default=TrainConfig.insertion,
        help="insertion points drawn per sequence (ours) or one set for the whole batch (the paper's)",
    )
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument(
        "--init",
        choices=["mean", "unk", "frequent"],
        default=TrainConfig.init,
        help="start: mean token embedding, UNK (paper), or frequent tokens",
    )
    tr.add_argument(
        "--targets", choices=["data", "soft"], default=TrainConfig.targets, help="corpus tokens (paper) or the model's own distribution"
    )
    tr.add_argument(
        "--data",
        choices=["corpus", "self-greedy", "self-sampled", "self-mixed"],
        default=TrainConfig.data,
        help="corpus text (paper) or the model's own continuations",
    )
    tr.add_argument(
        "--distill-windows", type=int, default=TrainConfig.distill_windows, help="windows the model continues for --data self-*"
    )
    tr.add_argument("--deep", action=argparse.BooleanOptionalAction, default=TrainConfig.deep, help="per-layer look-ahead vectors")
    tr.add_argument("--shared", action="store_true",
                    help="one vector for all L positions (needs --no-deep): what vLLM's parallel drafting can serve")
    tr.add_argument("--checkpoint-every", type=positive_int, default=25)
    tr.add_argument("--eval-every", type=int, default=0, help="validate every N steps; stop when the loss stops improving (0: off)")
    tr.add_argument("--patience", type=positive_int, default=3, help="validations without a new best before stopping")
    tr.add_argument("--validation-windows", type=positive_int, default=32, help="held-out windows for early stopping")
    tr.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    tr.add_argument("--device", default="cpu")
    tr.add_argument("--eval-windows", type=positive_int, default=64, help="held-out windows for the held-out loss")
    tr.add_argument("--eval-prompts", type=positive_int, default=8, help="held-out 32-token prompts for greedy acceptance")
    tr.add_argument("--eval-tokens", type=positive_int, default=64, help="tokens generated per held-out prompt")
    tr.set_defaults(func=cmd_train)

    from .experiments.bench import all_methods as bench_methods
    from .experiments.bench_setup import TASKS

    be = sub.add_parser("bench", help="time every method on the same prompts (paper Tables 1-2)")
    be.add_argument("--task", choices=TASKS, default="humaneval", help="HumanEval prompts or 32-token held-out code/text")
    be.add_argument("--prompts", type=positive_int, default=None, help="number of prompts (default 20; --quick 3)")
    be.add_argument("--max-new-tokens", type=positive_int, default=None, help="tokens per generation (default 256; --quick 96)")
    be.add_argument(
        "--lookahead", type=lambda t: _number_list(t, positive_int), default=[4], help="L values for trained PaSS, e.g. 2,4,6,8"
    )
    be.add_argument(
        "--unk-lookahead", type=lambda t: _number_list(t, positive_int), default=None, help="L values for [UNK] PaSS (default: --lookahead)"
    )
    be.add_argument("--temperature", type=_number_list, default=[0.0], help="temperatures, e.g. 0,0.2,0.5,0.8 (0 = greedy)")
    be.add_argument("--top-k", type=positive_int, default=10)
    be.add_argument(
        "--methods", type=lambda t: [m.strip() for m in t.split(",")], default=list(bench_methods()), help=",".join(bench_methods())
    )
    be.add_argument("--trained", default=None, help="directory of trained look-ahead embeddings (default: the shipped set)")
    be.add_argument(
        "--recipe",
        choices=["paper", "extended"],
        default="extended",
        help="which shipped sets (without --trained); the extended ones draft better",
    )
    be.add_argument("--num-draft-tokens", type=positive_int, default=4, help="drafts per iteration of the draft-model baseline")
    be.add_argument("--draft-layers", type=positive_int, default=8, help="layers of the self-speculative draft model")
    be.add_argument("--prompt-lookup-tokens", type=positive_int, default=10, help="drafts per lookup (HF prompt lookup, ours, the hybrid)")
    be.add_argument(
        "--groups",
        type=_group_set,
        default="auto",
        help="one-call PaSS: accepted counts that get a look-ahead group: auto (best for each set's measured acceptance "
             "and this machine's t(n)), all, none (the paper's two calls) or e.g. 0,1",
    )
    be.add_argument(
        "--hybrid-groups",
        type=lambda t: None if t == "all" else _number_list(t, int),
        default=[0],
        help="the same for the hybrid (one-call PaSS + prompt lookup)",
    )
    be.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    be.add_argument("--device", default="cpu")
    be.add_argument("--out", default=None, help="directory for summary.md/.csv, results.json, records.jsonl and figures")
    be.add_argument("--quick", action="store_true", help="a small size (3 prompts x 96 tokens) unless given")
    be.add_argument("--no-latency", action="store_true", help="skip measuring t(n) (no predicted speed-ups)")
    be.add_argument("--seed", type=int, default=0)
    be.add_argument("--command-line", default=None, help=argparse.SUPPRESS)
    be.set_defaults(func=cmd_bench)

    he = sub.add_parser("humaneval", help="HumanEval pass@k and time per completion, PaSS vs autoregressive (paper Table 2)")
    he.add_argument("--pass1-problems", type=int, default=164, help="problems for pass@1 at T = 0.1, 1 sample each (0 = skip)")
    he.add_argument("--pass10-problems", type=int, default=20, help="problems for pass@10 at T = 0.8, 10 samples each (0 = skip)")
    he.add_argument("--lookahead", default=None, help="trained look-ahead directory (default: the shipped code set)")
    he.add_argument("--num-lookahead", type=positive_int, default=4, help="L: use the first L vectors")
    he.add_argument("--recipe", choices=["paper", "extended"], default="extended", help="which shipped set (without --lookahead)")
    he.add_argument("--max-new-tokens", type=positive_int, default=256)
    he.add_argument("--top-k", type=positive_int, default=None)
    he.add_argument("--timeout", type=float, default=5.0, help="seconds each program may run in the harness's subprocess")
    he.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    he.add_argument("--device", default="cpu")
    he.add_argument("--seed", type=int, default=0)
    he.add_argument("--out", required=True, help="directory for completions.jsonl, table2.json, table2.md")
    he.set_defaults(func=cmd_humaneval)

    fa = sub.add_parser("fastest", help="every method vs the fastest plain decoding here: any dtype, eager or compiled (~12 min)")
    fa.add_argument("--methods", nargs="+", default=["ar", "hf", "hf-static", "pass", "pass-fused", "lookup", "hybrid"],
                    help="plain decoding (ar, hf, hf-static), look-ahead methods (pass, pass-fused, pass-unk), lookup, hybrid")
    fa.add_argument("--dtypes", nargs="+", choices=["float32", "bfloat16"], default=["float32", "bfloat16"])
    fa.add_argument("--recipes", nargs="+", choices=["paper", "extended"], default=["paper", "extended"],
                    help="the shipped code sets to run the look-ahead methods with")
    fa.add_argument("--num-lookahead", type=positive_int, default=4, help="L")
    fa.add_argument("--groups", type=_group_set, default="auto",
                    help="one-call PaSS's groups: auto (from each set's acceptance and each setup's t(n)), all, none or e.g. 0,1")
    fa.add_argument("--pass-lookahead", type=_pass_lookahead, default="auto",
                    help="look-ahead tokens two-call PaSS reads of the set's L: auto (from each set's acceptance and "
                         "each setup's t(n)), all, or a number")
    fa.add_argument("--lookup-tokens", type=positive_int, default=8, help="prompt lookup's drafts (lookup and hybrid)")
    fa.add_argument("--prompts", type=positive_int, default=4, help="HumanEval prompts")
    fa.add_argument("--max-new-tokens", type=positive_int, default=64)
    fa.add_argument("--max-cache-len", type=positive_int, default=None,
                    help="static caches' length, ours and transformers' (default: what the runs need, rounded up to 64)")
    fa.add_argument("--eager-only", action="store_true", help="skip our compiled static path")
    fa.add_argument("--freeze", type=_freeze, default="auto",
                    help="compiled sizes frozen with prepacked weights: auto (the one-token call timed both ways), all, "
                         "none or e.g. 5,9")
    fa.add_argument("--autotune", nargs="+", choices=["float32", "bfloat16"], default=[], metavar="DTYPE",
                    help="autotune the matmuls of these dtypes' compiled setups at compile time (minutes more per size; "
                         "pays most in bfloat16 on a CPU without bfloat16 instructions)")
    fa.add_argument("--prefill-sizes", nargs="+", type=positive_int, default=[], metavar="N",
                    help="compile the prompt's call at these sizes too (a prompt is padded to the smallest that holds it; "
                         "default: the prompt runs eagerly)")
    fa.add_argument("--out", default=None, help="folder for summary.md, results.json, records.jsonl")
    fa.add_argument("--save", action="store_true", help="write to results/fastest/<model>-<cpu kind> (read by make results-doc)")
    fa.set_defaults(func=cmd_fastest)

    doc = sub.add_parser("doctor", help="will PaSS pay on this machine? t(n), predicted speed-ups, a recommendation (a few minutes)")
    doc.add_argument("--lookahead", default=None, help="trained look-ahead directory (default: the shipped code set)")
    doc.add_argument("--num-lookahead", type=positive_int, default=4, help="L")
    doc.add_argument(
        "--recipe", choices=["paper", "extended"], default="extended", help="which shipped code set (the extended one drafts better)"
    )
    doc.add_argument("--prompts", type=positive_int, default=4, help="HumanEval prompts decoded to record call sizes")
    doc.add_argument("--max-new-tokens", type=positive_int, default=64)
    doc.add_argument("--repeats", type=positive_int, default=5, help="timings per n (medians)")
    doc.add_argument("--device", default="cpu")
    doc.add_argument("--compiled", action="store_true",
                     help="also measure t(n) on the compiled static path (compiles 4 sizes per dtype: several minutes)")
    doc.add_argument("--autotune", nargs="+", choices=["float32", "bfloat16"], default=[], metavar="DTYPE",
                     help="with --compiled: autotune these dtypes' matmuls at compile time (minutes more per size)")
    doc.add_argument("--out", default=None, help="write the report as JSON")
    doc.set_defaults(func=cmd_doctor)

    gr = sub.add_parser("grade", help="run submitted 07_assignments notebooks headless and print a score table")
    gr.add_argument("path", help="a notebook or a folder of notebooks")
    gr.add_argument("--timeout", type=positive_int, default=600, help="seconds one cell may run")
    gr.add_argument("--jobs", type=positive_int, default=1, help="notebooks graded at once (one kernel each)")
    gr.set_defaults(func=cmd_grade)

    eh = sub.add_parser("export-hf", help="write the model as a Hugging Face folder (safetensors) for an engine")
    eh.add_argument("out", help="the folder to write")
    eh.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    eh.set_defaults(func=cmd_export_hf)

    ev = sub.add_parser("export-vllm", help="a shared-vector look-ahead set as a vLLM draft model (parallel drafting)")
    ev.add_argument("set", help="the look-ahead set's folder (trained with --shared)")
    ev.add_argument("out", help="the draft folder to write (must not exist or be empty)")
    ev.add_argument("--token-id", type=int, default=None,
                    help="the embedding row to use (default: an unused row, else a spare added token)")
    ev.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    ev.set_defaults(func=cmd_export_vllm)
    return parser


def cmd_export_hf(args) -> int:
    """Write the model as a plain Hugging Face folder (safetensors), e.g. for vLLM."""
    from .serving import write_hf_folder

    model, tokenizer = load_model(args.model, dtype=DTYPES[args.dtype])
    out = write_hf_folder(model, tokenizer, args.out)
    print(f"wrote {out} ({args.dtype})")
    return 0


def cmd_export_vllm(args) -> int:
    """Write a shared-vector set as a vLLM draft model for parallel drafting."""
    from .lookahead import LookaheadEmbeddings
    from .serving import export_vllm

    model, tokenizer = load_model(args.model, dtype=DTYPES[args.dtype])
    lookahead = LookaheadEmbeddings.from_pretrained(args.set, model=model)
    report = export_vllm(lookahead, model, tokenizer, args.out, token_id=args.token_id)
    print(f"wrote {report.out_dir}: pard_token = {report.pard_token} ({report.row_reason}); "
          f"serve with K <= {report.num_lookahead + 1}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, FloatingPointError, MemoryError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
