"""Command line: ``python -m pass_ref {generate, demo, overhead, train}``.

    python -m pass_ref generate "def add(a, b):" --method pass --lookahead 4
    python -m pass_ref demo            # what `make demo` runs
    python -m pass_ref overhead        # Python-side cost of the loops vs model forward time
    python -m pass_ref train --domain code --lookahead 4 --steps 150 --out runs/code-L4
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

from . import autoregressive_generate, load_model, pass_generate, speculative_generate, truncated_draft_model
from .lookahead import LookaheadEmbeddings
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
    model, tokenizer = load_model(args.model, dtype=DTYPES[args.dtype], device=args.device)
    ids = _encode(tokenizer, args.prompt)
    common = dict(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        eos_token_id=None if args.ignore_eos else tokenizer.eos_token_id,
        seed=args.seed,
    )
    if args.method == "ar":
        out = autoregressive_generate(model, ids, **common)
    elif args.method == "pass":
        out = pass_generate(model, resolve_lookahead(args.lookahead, model), ids, **common)
    else:
        draft = truncated_draft_model(model, args.draft_layers)
        out = speculative_generate(model, draft, ids, num_draft_tokens=args.num_draft_tokens, **common)
    print(args.prompt + highlight_terminal(out, tokenizer))
    print(legend_terminal())
    print(summary_line(out, args.method))
    return 0


def cmd_demo(args) -> int:
    from .data import humaneval_prompts

    prompt = humaneval_prompts()[args.problem]
    print(f"Loading the default model (SmolLM2-135M-Instruct, float32) ...")
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
    return 0 if same else 1


def cmd_overhead(args) -> int:
    """Per-iteration wall time vs time inside model forward passes, bfloat16 by default."""
    from .data import humaneval_prompts

    model, tokenizer = load_model(args.model, dtype=DTYPES[args.dtype])
    lookahead = LookaheadEmbeddings.from_token(model, args.lookahead)
    rows = {"autoregressive": [], f"PaSS L={args.lookahead}": []}
    for prompt in humaneval_prompts(args.prompts):
        ids = _encode(tokenizer, prompt)
        for name in rows:
            if name == "autoregressive":
                out = autoregressive_generate(model, ids, max_new_tokens=args.max_new_tokens)
            else:
                out = pass_generate(model, lookahead, ids, max_new_tokens=args.max_new_tokens)
            s = out.stats
            rows[name].append((s.wall_time_s / s.iterations, s.forward_time_s / s.iterations, s.overhead_fraction, s.calls_per_token))
    print(f"{args.dtype}, {args.prompts} HumanEval prompts x {args.max_new_tokens} tokens, medians over prompts")
    print(f"{'method':<18}{'wall ms/iter':>14}{'forward ms/iter':>17}{'overhead':>10}{'calls/token':>13}")
    for name, values in rows.items():
        wall, fwd, over, cpt = (statistics.median(v[i] for v in values) for i in range(4))
        print(f"{name:<18}{wall * 1e3:>14.2f}{fwd * 1e3:>17.2f}{over:>10.1%}{cpt:>13.3f}")
    return 0


def cmd_train(args) -> int:
    """Train look-ahead embeddings on an offline corpus, evaluate them on held-out data, save them."""
    import json
    import shutil
    import time

    from .corpora import load_corpus, tokenize_windows
    from .evaluation import heldout_report
    from .train import TrainConfig, train_lookahead

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
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        init=args.init,
    )
    model, tokenizer = load_model(args.model, dtype=DTYPES[args.dtype], device=args.device)
    corpus = load_corpus(args.domain, "train")
    windows = tokenize_windows(tokenizer, corpus, config.seq_len)
    print(f"{args.domain}: {len(corpus)} training documents -> {tuple(windows.shape)} windows; L={config.num_lookahead}")
    partial = Path(f"{out}.partial")
    partial.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    lookahead, history = train_lookahead(model, tokenizer, windows, config, checkpoint=partial / "state.pt")
    minutes = (time.perf_counter() - start) / 60
    report = heldout_report(
        model, tokenizer, lookahead, args.domain, seq_len=config.seq_len, windows=args.eval_windows,
        prompts=args.eval_prompts, new_tokens=args.eval_tokens, seed=args.seed,
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
            f"--seed {args.seed} --init {args.init} --out DIR",
        }
    )
    if out.exists():
        shutil.rmtree(out)
    lookahead.save_pretrained(out)
    history_json = {"loss": history.loss, "accuracy": history.accuracy, "heldout_loss": report["heldout_loss"]}
    (out / "history.json").write_text(json.dumps(history_json) + "\n")
    shutil.rmtree(partial)
    greedy = report["heldout_greedy"]
    print(f"trained in {minutes:.1f} min; held-out loss {report['heldout_loss']:.3f}, "
          f"top-1 accuracy per [LA]_i {report['heldout_top1_accuracy']}")
    print(f"greedy PaSS on {greedy['prompts']} held-out prompts: acceptance {greedy['acceptance']}, "
          f"{greedy['tokens_per_call']:.3f} tokens per model call")
    print(f"saved to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pass_ref", description="PaSS: parallel speculative sampling")
    parser.add_argument("--model", default=None, help="model id, directory or .gguf (default: SmolLM2-135M-Instruct)")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="complete a prompt and highlight accepted drafts")
    gen.add_argument("prompt")
    gen.add_argument("--method", choices=["pass", "ar", "spec"], default="pass")
    gen.add_argument("--lookahead", default="4", help="L (untrained [UNK] vectors) or a saved directory")
    gen.add_argument("--temperature", type=float, default=0.0)
    gen.add_argument("--top-k", type=int, default=None)
    gen.add_argument("--top-p", type=float, default=None)
    gen.add_argument("--max-new-tokens", type=int, default=64)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    gen.add_argument("--device", default="cpu")
    gen.add_argument("--num-draft-tokens", type=int, default=4, help="drafts per iteration for --method spec")
    gen.add_argument("--draft-layers", type=int, default=8, help="layers kept in the self-speculative draft model")
    gen.add_argument("--ignore-eos", action="store_true", help="always generate --max-new-tokens tokens")
    gen.set_defaults(func=cmd_generate)

    demo = sub.add_parser("demo", help="autoregressive vs PaSS on a HumanEval prompt, with the exactness check")
    demo.add_argument("--problem", type=int, default=0, help="HumanEval problem index")
    demo.add_argument("--max-new-tokens", type=int, default=64)
    demo.set_defaults(func=cmd_demo)

    over = sub.add_parser("overhead", help="Python overhead of the decoding loops vs model forward time")
    over.add_argument("--prompts", type=int, default=5)
    over.add_argument("--max-new-tokens", type=int, default=64)
    over.add_argument("--lookahead", type=int, default=4)
    over.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    over.set_defaults(func=cmd_overhead)

    tr = sub.add_parser("train", help="train look-ahead embeddings on the offline code or text corpus")
    tr.add_argument("--domain", choices=["code", "text"], required=True)
    tr.add_argument("--lookahead", type=int, required=True, help="L, the number of look-ahead embeddings")
    tr.add_argument("--steps", type=int, default=150)
    tr.add_argument("--out", required=True, help="output directory (refused if it exists, unless --overwrite)")
    tr.add_argument("--overwrite", action="store_true")
    tr.add_argument("--batch-size", type=int, default=8)
    tr.add_argument("--lr", type=float, default=0.01)
    tr.add_argument("--warmup", type=int, default=None, help="warm-up steps (default: 20%% of --steps, as in the paper)")
    tr.add_argument("--seq-len", type=int, default=128)
    tr.add_argument("--blocks", type=int, default=16, help="insertion blocks per sequence sharing one masked pass")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--init", choices=["mean", "unk"], default="mean", help="start from the mean token embedding or UNK (paper)")
    tr.add_argument("--checkpoint-every", type=int, default=25)
    tr.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    tr.add_argument("--device", default="cpu")
    tr.add_argument("--eval-windows", type=int, default=64, help="held-out windows for the held-out loss")
    tr.add_argument("--eval-prompts", type=int, default=8, help="held-out 32-token prompts for greedy acceptance")
    tr.add_argument("--eval-tokens", type=int, default=64, help="tokens generated per held-out prompt")
    tr.set_defaults(func=cmd_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, FloatingPointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
