"""The weight-streaming bound: weight bytes counted once each, a positive copy bandwidth, the doctor's table."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from pass_ref.experiments.bandwidth import memory_bandwidth, streaming_bound, weight_bytes
from pass_ref.experiments.doctor import DoctorReport, machine_features, method_table, record_calls
from pass_ref.experiments.latency import LatencyCurve
from pass_ref.lookahead import LookaheadEmbeddings


def test_weight_bytes_counts_each_tensor_once(tiny_model):
    """What a one-token pass streams: every weight once; an untied input embedding table not at all."""
    expected = sum(p.numel() * p.element_size() for p in tiny_model.parameters())
    expected += sum(b.numel() * b.element_size() for b in tiny_model.buffers())
    table = tiny_model.get_input_embeddings().weight
    assert not tiny_model.config.tie_word_embeddings  # the tiny model's table is its own: gathered, not streamed
    assert weight_bytes(tiny_model) == expected - table.numel() * table.element_size()
    config = LlamaConfig(vocab_size=50, hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=2, tie_word_embeddings=True)
    shared = LlamaForCausalLM(config)  # tied: the table is the LM head, streamed once
    assert shared.get_output_embeddings().weight is shared.get_input_embeddings().weight
    assert weight_bytes(shared) == sum(p.numel() * p.element_size() for p in shared.parameters()) + sum(
        b.numel() * b.element_size() for b in shared.buffers())
    tied = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 10, bias=False))
    tied[1].weight = tied[0].weight  # one storage, two modules
    assert weight_bytes(tied) == 10 * 4 * 4
    assert weight_bytes(tied.to(torch.bfloat16)) == 10 * 4 * 2


def test_memory_bandwidth_is_a_plausible_rate():
    rate = memory_bandwidth("cpu", megabytes=16, repeats=3)
    assert 1e8 < rate < 1e13  # between 0.1 GB/s and 10 TB/s
    assert streaming_bound(2_000_000_000, 2e10) == pytest.approx(0.1)
    with pytest.raises(ValueError, match=">= 1"):
        memory_bandwidth("cpu", megabytes=0)
    with pytest.raises(ValueError, match="bandwidth"):
        streaming_bound(10, 0.0)


def test_doctor_sets_t1_against_the_bound(tiny_model):
    curve = LatencyCurve(new_tokens=list(range(1, 33)), seconds=[0.03] * 32, context=8, repeats=1, device="cpu", dtype="float32", model="x")
    runs = record_calls(method_table(tiny_model, LookaheadEmbeddings.from_random(tiny_model, 2, seed=0), 2), [torch.tensor([[1, 2, 3]])], 4)
    report = DoctorReport(machine_features(), {"float32": curve}, runs, 2, 1.0, bandwidth=1e10, weights={"float32": 10**8})
    (row,) = report.streaming()
    assert row["bound_ms"] == pytest.approx(10.0) and row["t1_ms"] == pytest.approx(30.0) and row["t1_over_bound"] == pytest.approx(3.0)
    text = report.format()
    assert "weight-streaming bound (copy bandwidth 10.0 GB/s)" in text and "| float32 | 100 | 10.0 | 30.0 | 3.0 |" in text
    assert report.to_dict()["streaming"] == [row]
    assert DoctorReport(machine_features(), {"float32": curve}, runs, 2, 1.0).streaming() == []  # not measured: no table
