"""vLLM with PaSS drafting, both routes (run by `make test-vllm` in .venv-vllm, never by `make test`).

Each route runs in its own process (`python -m pass_ref.serving.engine`): greedy float32 output must
equal vLLM's own output without speculation, token for token; the acceptance vLLM counts must match
pass-ref's own measurement of the same set; a sampled run must complete.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from pass_ref.serving.engine import asset_folders

pytest.importorskip("vllm", reason="opt-in: vLLM lives in .venv-vllm (make vllm), and these tests run with make test-vllm")

ROOT = Path(__file__).resolve().parents[2]
MODELS = asset_folders(ROOT)  # name -> (base folder, shared draft folder, distinct set folder)
PROMPTS, TOKENS = 4, 48


def present(name):
    return all(p.exists() for p in MODELS[name])


def run(route, name, tmp_path_factory, **options):
    base, draft, distinct = MODELS[name]
    out = tmp_path_factory.mktemp(route) / "run.json"
    args = [sys.executable, "-m", "pass_ref.serving.engine", route, str(base), "--draft", str(draft), "--lookahead", str(distinct),
            "--prompts", str(PROMPTS), "--max-tokens", str(TOKENS), "--out", str(out)]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    subprocess.run(args, check=True, cwd=ROOT, timeout=900)
    return json.loads(out.read_text())


@pytest.fixture(scope="module", params=["smollm2", "qwen0.5b"])
def model(request):
    if not present(request.param):
        pytest.skip(f"{request.param}: its folders are absent (make vllm-assets writes SmolLM2's; Qwen's need make models-extra first)")
    return request.param


@pytest.fixture(scope="module")
def runs(model, tmp_path_factory):
    return {route: run(route, model, tmp_path_factory) for route in ("plain", "parallel", "custom")}


@pytest.mark.parametrize("route", ["parallel", "custom"])
def test_greedy_output_equals_vllm_without_speculation(runs, route):
    assert runs[route]["tokens"] == runs["plain"]["tokens"]
    assert runs[route]["drafts"] > 0  # speculation really ran


def test_custom_route_acceptance_matches_pass_refs_own(runs, model):
    """vLLM's draft 1 is the model's own next token (always kept under greedy); its draft j + 1 is [LA]_j, so its
    acceptance at position j + 1 is pass-ref's at [LA]_j, measured by pass_generate on the same prompts."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import pass_ref
    from pass_ref.experiments.data import humaneval_prompts

    base, _, distinct = MODELS[model]
    m = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(base)
    la = pass_ref.LookaheadEmbeddings.from_pretrained(distinct, model=m)
    k = runs["custom"]["k"]
    drafted, accepted = [0] * (k - 1), [0] * (k - 1)
    for prompt in humaneval_prompts(PROMPTS):
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        stats = pass_ref.pass_generate(m, la, ids, max_new_tokens=TOKENS, num_lookahead=k - 1).stats
        for j in range(k - 1):
            drafted[j] += stats.drafted[j] if j < len(stats.drafted) else 0
            accepted[j] += stats.accepted[j] if j < len(stats.accepted) else 0
    ours = [a / d for a, d in zip(accepted, drafted)]
    theirs = runs["custom"]["acceptance_per_position"]
    assert theirs[0] == pytest.approx(1.0)
    for j in range(k - 1):  # binomial noise of both counts, three standard errors
        se = math.sqrt(ours[j] * (1 - ours[j]) / drafted[j] + theirs[j + 1] * (1 - theirs[j + 1]) / runs["custom"]["drafts"])
        assert abs(theirs[j + 1] - ours[j]) <= 3 * se + 0.02, (j, ours, theirs)


@pytest.mark.parametrize("route", ["parallel", "custom"])
def test_sampled_run_completes(model, route, tmp_path_factory):
    result = run(route, model, tmp_path_factory, temperature=1.0, seed=7)
    assert result["new_tokens"] == PROMPTS * TOKENS and result["drafts"] > 0


def test_bad_draft_is_refused_before_vllm_starts(model, tmp_path_factory):
    base, draft, _ = MODELS[model]
    out = tmp_path_factory.mktemp("bad") / "run.json"
    done = subprocess.run([sys.executable, "-m", "pass_ref.serving.engine", "parallel", str(base), "--draft", str(draft),
                           "--k", "9", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "K must be in 1..5" in done.stderr and not out.exists()
