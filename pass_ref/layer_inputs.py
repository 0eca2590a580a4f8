"""Vectors added to the hidden states entering each decoder layer (deep look-ahead).

Deep look-ahead (``pass_ref.lookahead``) adds a learned vector to the input of every
decoder layer at the look-ahead positions only. This module is the one place that touches
the layers, in two ways:

- ``added_to_layers(model, delta)``: a context that adds ``delta`` (num_layers, M, D) to
  the last M positions of every layer's input while it is open (temporary forward
  pre-hooks). The eager cache and the training loop use it; gradients flow into ``delta``.
- ``install_delta_hooks(model)``: permanent hooks that read the same tensor, padded to
  the whole call (num_layers, Q, D), from a keyword argument of the model's forward
  (``DELTA_KWARG``; transformers passes unknown keywords down to the decoder layers).
  A compiled forward needs this form: the hooks never change, the tensor is an input.

Real positions get zeros (or nothing), so their hidden states, and the logits that
verification reads, are the frozen model's.
"""

from __future__ import annotations

import contextlib

import torch

DELTA_KWARG = "lookahead_delta"


def decoder_layers(model) -> torch.nn.ModuleList:
    """The decoder layers of a decoder-only transformers model (``model.model.layers``)."""
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None:
        raise TypeError(f"{type(model).__name__} has no `model.layers`: deep look-ahead needs a decoder-only model")
    count = model.config.num_hidden_layers
    return layers if len(layers) == count else layers[:count]  # slicing builds a new ModuleList: only when needed


def _check_layers(model, delta: torch.Tensor) -> torch.nn.ModuleList:
    layers = decoder_layers(model)
    if delta.dim() != 3 or delta.shape[0] != len(layers):
        raise ValueError(f"layer delta must be (num_layers={len(layers)}, M, D), got {tuple(delta.shape)}")
    return layers


def _with_hidden(args, kwargs, hidden):
    if args:
        return (hidden, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": hidden}


@contextlib.contextmanager
def added_to_layers(model, delta: torch.Tensor | None):
    """Inside the block, layer i's input gets ``delta[i]`` (M, D) added at its last M positions."""
    if delta is None or delta.shape[1] == 0:
        yield
        return
    layers, M = _check_layers(model, delta), delta.shape[1]

    def make_hook(index: int):
        def hook(module, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]  # (B, T, D)
            add = delta[index].to(device=hidden.device, dtype=hidden.dtype)  # (M, D)
            return _with_hidden(args, kwargs, torch.cat([hidden[:, :-M], hidden[:, -M:] + add], dim=1))

        return hook

    handles = []
    try:
        for i, layer in enumerate(layers):
            handles.append(layer.register_forward_pre_hook(make_hook(i), with_kwargs=True))
        yield
    finally:
        for handle in handles:
            handle.remove()


def install_delta_hooks(model) -> None:
    """Permanent hooks: ``model(..., lookahead_delta=delta)`` adds ``delta[i]`` (Q, D) to layer i's whole input.

    Idempotent. Without the keyword the hooks do nothing (the model runs as before).
    """
    layers = decoder_layers(model)
    if getattr(layers[0], "_pass_ref_delta_hook", False):  # on the layers: a shallow copy of the model shares them
        return

    def make_hook(index: int):
        def hook(module, args, kwargs):
            delta = kwargs.pop(DELTA_KWARG, None)  # (num_layers, Q, D) or absent
            if delta is None:
                return args, kwargs
            hidden = args[0] if args else kwargs["hidden_states"]  # (1, Q, D)
            return _with_hidden(args, kwargs, hidden + delta[index].to(hidden.dtype)[None])

        return hook

    for i, layer in enumerate(layers):
        layer.register_forward_pre_hook(make_hook(i), with_kwargs=True)
        layer._pass_ref_delta_hook = True
