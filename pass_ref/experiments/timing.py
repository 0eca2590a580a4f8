"""Clocks live here, outside the core: the decoding loop only counts.

``timed(run, *models)`` runs ``run()`` and measures its wall time and the time spent inside
the forward passes of ``models`` (forward hooks; exact on CPU, where a forward pass is
synchronous; on CUDA each pass is synchronised before its clock is read, which slows it).
On a model from ``pass_ref.static_model`` the forward is its compiled call (decoder and LM
head) or, for a prompt, its eager call (decoder and LM head on the kept rows); the static
path's own per-call work (embeddings, padding, a drafter's group block) counts as outside the forward.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..cache import input_device


def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work on ``device`` (a no-op elsewhere) before reading a clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """Seconds of one timed run."""

    wall_s: float  # the whole run
    forward_s: float  # inside forward passes of the timed models
    forward_calls: int
    call_seconds: list[float] = field(default_factory=list)  # each top-level forward pass, in order

    @property
    def overhead_fraction(self) -> float:
        """(wall - forward) / forward: the cost of everything that is not the model."""
        return (self.wall_s - self.forward_s) / self.forward_s if self.forward_s > 0 else float("nan")


def timed(run: Callable[[], object], *models) -> tuple[object, Timing]:
    """``(run(), Timing)``; forward time is summed over the passes of ``models`` (top-level calls only)."""
    devices = {input_device(m) for m in models}
    starts: list[float] = []
    forward = [0.0, 0]
    calls: list[float] = []
    depth = [0]

    def before(module, args, kwargs):
        depth[0] += 1
        if depth[0] == 1:
            for d in devices:
                synchronize(d)
            starts.append(time.perf_counter())

    def after(module, args, kwargs, output):
        depth[0] -= 1
        if depth[0] == 0:
            for d in devices:
                synchronize(d)
            calls.append(time.perf_counter() - starts.pop())
            forward[0] += calls[-1]
            forward[1] += 1

    handles = [h for m in models for h in (m.register_forward_pre_hook(before, with_kwargs=True),
                                           m.register_forward_hook(after, with_kwargs=True))]
    static = [m.pass_ref_static for m in models if getattr(m, "pass_ref_static", None) is not None]
    own = [(decoding, name, vars(decoding).get(name)) for decoding in static for name in ("_run", "_prefill")]
    for decoding, name, _ in own:  # compiled calls run no module hooks: time the calls themselves
        call = getattr(decoding, name)

        def clocked(*args, _call=call):
            before(None, args, {})
            try:
                return _call(*args)
            finally:
                after(None, args, {}, None)

        setattr(decoding, name, clocked)
    try:
        for d in devices:
            synchronize(d)
        start = time.perf_counter()
        result = run()
        for d in devices:
            synchronize(d)
        wall = time.perf_counter() - start
    finally:
        for h in handles:
            h.remove()
        for decoding, name, original in own:  # back to the instance's own callable, or to the class's method
            if original is None:
                del vars(decoding)[name]
            else:
                setattr(decoding, name, original)
    return result, Timing(wall, forward[0], forward[1], calls)
