"""Shared fixtures and helpers: tiny random models built in the test (no downloads), the real model,
and ``drafter_for``, which builds any method of the table with what a test has at hand."""

import os
import shutil

import pytest
import torch

import pass_ref
from pass_ref.methods import METHODS, make_drafter

# torch.compile on a CPU builds C++ kernels: the compiled-path tests need a compiler.
needs_compiler = pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                                    reason="torch.compile on a CPU needs a C++ compiler (g++)")

# Under pytest-xdist (make test runs one worker per core), each worker takes its share of the cores, not all of them,
# and so do the processes it starts (notebook kernels, nbval runs): OpenMP threads that outnumber the cores spin-wait
# for each other, which made one subprocess test six times slower.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    from pass_ref.course.grading import _cpus  # the cores this process may run on, as the grader counts them

    _SHARE = max(1, _cpus() // _WORKERS)
    torch.set_num_threads(_SHARE)
    os.environ.setdefault("OMP_NUM_THREADS", str(_SHARE))

# PASS_REF_TEST_DEVICE=cuda runs the tiny-model tests on a GPU (tools/gpu_check.py does).
TEST_DEVICE = os.environ.get("PASS_REF_TEST_DEVICE", "cpu")
PROMPTS = [[1, 2, 3], [5, 6, 7, 8, 9], [0], [7, 7, 1, 2, 30, 11]]


def random_lookahead(model, L, seed=0):
    """Untrained random look-ahead vectors (random drafts, still exact output)."""
    la = pass_ref.LookaheadEmbeddings.from_token(model, L)
    with torch.no_grad():
        noise = torch.randn(la.weight.shape, generator=torch.Generator().manual_seed(seed), dtype=la.weight.dtype)
        la.weight.copy_(0.2 * noise)  # drawn on the CPU: the same vectors on every device
    return la


def drafter_for(name, model, lookahead, **options):
    """The drafter of method ``name``: the set if it needs one, the target's first layer as a draft model if it needs one."""
    method = METHODS[name]
    if "draft_model" in method.options and "draft_model" not in options:
        options["draft_model"] = pass_ref.truncated_draft_model(model, 1)
    if method.size == "num_lookahead" and "num_lookahead" not in options:
        options["num_lookahead"] = lookahead.num_lookahead
    return make_drafter(name, model, lookahead if method.needs_lookahead else None, **options)


def drafting_methods():
    """Every method of the table that proposes drafts (negative controls need drafts to catch)."""
    return [name for name in METHODS if name != "ar"]


@pytest.fixture(scope="session")
def tiny_model():
    """A 2-layer float64 Llama with a 32-token vocabulary and peaked distributions."""
    return pass_ref.tiny_llama(vocab_size=32, hidden_size=32, num_layers=2, seed=0).to(TEST_DEVICE)


@pytest.fixture(scope="session")
def real_model():
    """The default SmolLM2-135M-Instruct in float32 (cached as safetensors after one load)."""
    return pass_ref.load_model(dtype=torch.float32)


@pytest.fixture(scope="session")
def small():
    """A tiny float64 Llama with a 4-token vocabulary (so sequence laws can be enumerated) and
    random, untrained look-ahead vectors (L = 3) that get both accepted and rejected."""
    model = pass_ref.tiny_llama(vocab_size=4, hidden_size=16, seed=3, init_std=0.15)
    la = pass_ref.LookaheadEmbeddings.from_token(model, 3)
    with torch.no_grad():
        la.weight.normal_(0, 1.0, generator=torch.Generator().manual_seed(0))
    return model, la
