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
