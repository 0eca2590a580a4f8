"""The two ways deep look-ahead vectors reach the decoder layers agree, and real positions are untouched."""

import copy

import pytest
import torch

from pass_ref.layer_inputs import DELTA_KWARG, added_to_layers, install_delta_hooks


def test_keyword_hooks_equal_the_context_and_leave_real_rows_alone(tiny_model):
    layers, D, T, M = tiny_model.config.num_hidden_layers, tiny_model.config.hidden_size, 5, 3
    delta = torch.randn(layers, M, D, dtype=tiny_model.dtype, generator=torch.Generator().manual_seed(0))  # (layers, M, D)
    embeds = torch.randn(1, T + M, D, dtype=tiny_model.dtype, generator=torch.Generator().manual_seed(1))  # (1, T+M, D)
    plain = tiny_model(inputs_embeds=embeds).logits[0]  # (T+M, V)
    with added_to_layers(tiny_model, delta):
        context = tiny_model(inputs_embeds=embeds).logits[0]
    hooked = copy.deepcopy(tiny_model)
    install_delta_hooks(hooked)
    install_delta_hooks(hooked)  # idempotent: a second call adds nothing
    padded = torch.cat([torch.zeros(layers, T, D, dtype=delta.dtype), delta], dim=1)  # (layers, T+M, D)
    keyword = hooked(inputs_embeds=embeds, **{DELTA_KWARG: padded}).logits[0]
    assert torch.equal(context[:T], plain[:T])  # real positions never see the vectors
    assert not torch.allclose(context[T:], plain[T:])  # negative control: the vectors do change the look-ahead rows
    torch.testing.assert_close(keyword, context, rtol=0, atol=1e-12)
    assert torch.equal(hooked(inputs_embeds=embeds).logits[0], plain)  # without the keyword: the plain model


def test_a_delta_of_the_wrong_shape_is_refused(tiny_model):
    with pytest.raises(ValueError, match="num_layers"):
        with added_to_layers(tiny_model, torch.zeros(7, 2, tiny_model.config.hidden_size, dtype=tiny_model.dtype)):
            pass
