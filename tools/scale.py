"""Scale: the same look-ahead recipe on SmolLM2-135M and on Qwen2.5-Coder-0.5B-Instruct.

    make models-extra
    python tools/scale.py --recipe paper --steps 50
    python tools/scale.py --recipe default --steps 100 --distill-windows 384 --models Qwen2.5-Coder-0.5B-Instruct
    python tools/scale.py --recipe paper --steps 1500 --eval-every 50 --patience 3 --models Qwen2.5-Coder-0.5B-Instruct

Both models train L = 4 code look-ahead vectors with the same recipe and the same number
of steps (the CPU budget of a 0.5B model here is the limit: its step time is measured and
reported), then are evaluated the same way: 10 held-out code prompts x 64 tokens, greedy
and T = 0.8 top-k 10 (acceptance LA_1..4, tokens per call), and the held-out objective.
Each model gets its own prompts (the same held-out documents, cut by its own tokenizer).
``--recipe paper`` is the paper's (corpus tokens, input vectors only); ``--recipe default``
the shipped default (the ablation's winner: self-distilled data, soft targets, deep
look-ahead), whose self-distillation minutes count in the budget. Writes
results/ablation/scale.json (one block per recipe, with its command); the vectors go to
results/ablation/scale_vectors/<model>-<recipe>/ (committed: Table 2 uses the Qwen ones).

``--eval-every N`` trains until the held-out loss stops improving: every N steps the loss on
32 validation windows (held-out windows the final evaluation does not use; with ``--prompts
functions``, held-out windows of that kind) is measured,
training stops after ``--patience`` validations without a new best and keeps the best
vectors; ``--steps`` is then a maximum (and sets the warm-up and cosine schedule). The
validation curve, best step and stop step go into the vectors' metadata and history.json.
A checkpoint (``state.pt`` beside the vectors, every 25 steps) lets an interrupted run resume.

``--warm-start`` trains a second stage from the vectors a previous run saved for that model and
recipe (a fresh warm-up and cosine schedule over ``--steps``); give it another ``--seed`` so that
its self-distilled windows and batch order are new data. The metadata keeps the previous stage's
steps, minutes and validation curve under ``first_stage`` (nested: a third stage holds the
second's, which holds the first's). ``--prompts functions`` self-distils from prompts that end
after a function's docstring, where a HumanEval prompt ends (``corpora.function_windows``).

``--ship`` then copies a model's vectors into ``pass_ref/trained/models/<model>/<recipe>/code-L4`` (what
``load_lookahead("code", 4, recipe=..., model=...)`` returns) with the held-out figures in their metadata;
``--ship-only`` does that from a finished run's vectors and its row in scale.json, without training or evaluating.
SmolLM2's shipped sets come from ``make train`` instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from pass_ref import LookaheadEmbeddings, load_model
from pass_ref.experiments.evaluation import measure_acceptance
from pass_ref.training.corpora import function_windows, heldout_prompts, load_corpus, tokenize_windows
from pass_ref.training.train import TrainConfig, evaluate_loss, train_lookahead

ROOT = Path(__file__).resolve().parents[1]

MODELS = {"SmolLM2-135M-Instruct": None, "Qwen2.5-Coder-0.5B-Instruct": "qwen2.5-coder-0.5b-instruct"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=["paper", "default"], default="paper")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--distill-windows", type=int, default=512, help="self-distilled windows (--recipe default)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--eval-every", type=int, default=0, help="validate every N steps and stop when the loss stops improving")
    parser.add_argument("--patience", type=int, default=3, help="validations without a new best before stopping")
    parser.add_argument("--ship", action="store_true", help="ship the vectors into pass_ref/trained/models/ (not SmolLM2)")
    parser.add_argument("--ship-only", action="store_true", help="ship a finished run's vectors and scale.json row, nothing else")
    parser.add_argument("--evaluate-only", action="store_true", help="evaluate the vectors a previous run saved (no training)")
    parser.add_argument("--warm-start", action="store_true", help="start from the vectors a previous run saved (another stage)")
    parser.add_argument("--prompts", choices=["windows", "functions"], default="windows",
                        help="self-distillation prompts ending anywhere, or after a function's docstring (--recipe default)")
    parser.add_argument("--seed", type=int, default=0, help="data order, insertion points and self-distilled windows")
    parser.add_argument("--out", default=str(ROOT / "results" / "ablation" / "scale.json"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {"recipes": {}}
    block = results["recipes"].setdefault(args.recipe, {"rows": {}})
    stored_command = block.get("command")  # the run --ship-only ships
    block["command"] = "python tools/scale.py " + " ".join(argv if argv is not None else sys.argv[1:])
    for name in args.models.split(","):
        if name not in MODELS:
            raise SystemExit(f"unknown model {name!r}; choose from {list(MODELS)}")
        if (args.ship or args.ship_only) and MODELS[name] is None:
            raise SystemExit(f"{name}'s shipped sets come from `make train`, not from this script")
        if args.ship_only:
            ship(name, args.recipe, block["rows"][name], stored_command)
            continue
        if args.recipe == "paper":  # the paper's settings with the shipped sets' departures (recipes.deviations names them)
            def make(**kw):
                return TrainConfig.paper(init="mean", insertion="sequence", blocks_per_sequence=16, **kw)
        else:
            make = TrainConfig
        config = make(num_lookahead=4, steps=args.steps, warmup=max(1, args.steps // 5),
                      distill_windows=args.distill_windows, checkpoint_every=25 if args.eval_every else 10**6,
                      eval_every=args.eval_every, patience=args.patience, seed=args.seed,
                      **({"prompts": args.prompts} if args.recipe == "default" else {}))
        tick = time.perf_counter()
        model, tokenizer = load_model(MODELS[name], dtype=torch.bfloat16)
        load_s = time.perf_counter() - tick
        params = sum(p.numel() for p in model.parameters())
        print(f"== {name}: {params / 1e6:.0f} M parameters, loaded in {load_s:.0f} s; {asdict(config)}", flush=True)
        if config.prompts == "functions":
            windows = function_windows(tokenizer, load_corpus("code", "train"), config.seq_len, config.distill_prompt_len)
        else:
            windows = tokenize_windows(tokenizer, load_corpus("code", "train"), config.seq_len)
        vectors = ROOT / "results" / "ablation" / "scale_vectors" / f"{name}-{args.recipe}"
        heldout_all = tokenize_windows(tokenizer, load_corpus("code", "heldout"), config.seq_len, max_windows=64)
        heldout, validation = heldout_all[:32], heldout_all[32:]  # final evaluation / early stopping
        if config.prompts == "functions":  # early stopping on the kind of window it trains on
            validation = function_windows(tokenizer, load_corpus("code", "heldout"), config.seq_len,
                                          config.distill_prompt_len, max_windows=32)
        if args.evaluate_only:
            la = LookaheadEmbeddings.from_pretrained(vectors, model=model)
            minutes, final_loss = la.metadata.get("train_minutes"), la.metadata.get("final_train_loss")
        else:
            tick = time.perf_counter()
            state = vectors.parent / f"{vectors.name}.state.pt" if args.eval_every else None
            if state is not None:
                state.parent.mkdir(parents=True, exist_ok=True)
            start = LookaheadEmbeddings.from_pretrained(vectors, model=model) if args.warm_start else None
            first_stage = None if start is None else {k: start.metadata.get(k) for k in (
                "trained_steps", "train_minutes", "distill_minutes", "best_step", "validation", "command", "first_stage")}
            la, history = train_lookahead(model, tokenizer, windows, config, checkpoint=state, lookahead=start,
                                          validation=validation if args.eval_every else None)
            minutes, final_loss = (time.perf_counter() - tick) / 60, history.loss[-1]
            la.metadata["train_minutes"] = round(minutes, 2)
            if first_stage is not None:
                first_stage["command"] = first_stage["command"] or stored_command
                la.metadata["first_stage"] = first_stage
            if args.eval_every:
                stopped = history.stopped_at is not None
                la.metadata.update(converged=stopped, trained_steps=len(history.loss), best_step=history.best_step,
                                   stopped_at=history.stopped_at, validation=history.validation)
                la.metadata["train_note"] = (
                    f"trained until the held-out loss stopped improving: best at step {history.best_step}, "
                    f"stopped at {history.stopped_at} ({args.patience} validations of 32 windows without a new best)"
                    if stopped else f"{len(history.loss)} steps (the maximum) without the held-out loss stopping improving")
                if first_stage is not None:
                    stage = len(la.stage_steps())  # this one, after every earlier stage
                    la.metadata["train_note"] += (f"; stage {stage}, from the vectors of stage {stage - 1} "
                                                  f"({first_stage['trained_steps']} steps)")
            la.save_pretrained(vectors, overwrite=True)
            (vectors / "history.json").write_text(json.dumps(asdict(history)) + "\n")
            if state is not None:
                state.unlink(missing_ok=True)
        prompts = heldout_prompts(tokenizer, "code", 10, seed=0)
        loss, acc = evaluate_loss(model, la, heldout)
        row = {
            "command": block["command"],
            "parameters": params,
            "lookahead_parameters": la.num_parameters,
            "recipe": asdict(config),
            "train_minutes": round(minutes, 2) if minutes is not None else None,
            "distill_minutes": la.metadata.get("distill_minutes"),
            "heldout_loss": round(loss, 4),
            "heldout_top1_accuracy": [round(a, 4) for a in acc],
            "final_train_loss": round(final_loss, 4),
            **({k: la.metadata.get(k) for k in ("best_step", "stopped_at", "trained_steps")} if args.eval_every else {}),
            "earlier_stages": earlier_stages(la.metadata),
        }
        for label, kwargs in (("greedy", {}), ("T0.8", dict(temperature=0.8, top_k=10))):
            r = measure_acceptance(model, la, prompts, max_new_tokens=64, seed=0, **kwargs)
            row[label] = {"acceptance": [round(a, 4) for a in r.acceptance], "tokens_per_call": round(r.tokens_per_call, 4)}
        block["rows"][name] = row
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))
        print(f"   {minutes or float('nan'):.1f} min; greedy {row['greedy']}; T=0.8 {row['T0.8']}", flush=True)
        del model
        if args.ship:
            ship(name, args.recipe, row, block["command"])
    return 0


def earlier_stages(metadata: dict) -> list[dict]:
    """The stages a warm-started set was trained from, first first: their steps and minutes (self-distillation included)."""
    stages, stage = [], metadata.get("first_stage")
    while isinstance(stage, dict):
        stages.insert(0, {"steps": stage.get("trained_steps"), "minutes": stage.get("train_minutes") or 0})
        stage = stage.get("first_stage")
    return stages


def ship(name: str, recipe: str, row: dict, command: str) -> Path:
    """Copy ``name``'s vectors from this script's output into the package's shipped sets, with their held-out figures."""
    from pass_ref.trained import MODELS_DIR, RECIPES

    shipped_recipe = {"paper": "paper", "default": "extended"}[recipe]
    assert shipped_recipe in RECIPES
    source = ROOT / "results" / "ablation" / "scale_vectors" / f"{name}-{recipe}"
    la = LookaheadEmbeddings.from_pretrained(source)
    la.metadata.update(command=command, shipped_from=str(source.relative_to(ROOT)), heldout_loss=row["heldout_loss"],
                       heldout_top1_accuracy=row["heldout_top1_accuracy"],
                       heldout_greedy={**row["greedy"], "prompts": 10, "max_new_tokens": 64})
    la.metadata.setdefault("converged", False)
    la.metadata.setdefault("trained_steps", la.metadata.get("steps_trained"))
    target = MODELS_DIR / MODELS[name] / shipped_recipe / "code-L4"
    la.save_pretrained(target, overwrite=True)
    if (source / "history.json").is_file():
        (target / "history.json").write_text((source / "history.json").read_text())
    print(f"shipped {source.relative_to(ROOT)} -> {target.relative_to(ROOT)}", flush=True)
    return target


if __name__ == "__main__":
    raise SystemExit(main())
