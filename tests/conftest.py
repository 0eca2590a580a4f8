"""Shared fixtures: tiny random models built in the test (no downloads) and the real model."""

import os

import pytest
import torch

import pass_ref

# PASS_REF_TEST_DEVICE=cuda runs the tiny-model tests on a GPU (tools/gpu_check.py does).
TEST_DEVICE = os.environ.get("PASS_REF_TEST_DEVICE", "cpu")


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
