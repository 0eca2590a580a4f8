"""The memory-bandwidth limit of decoding: how fast t(1) could possibly be here.

A one-token forward pass of a decoder reads every weight once, and at batch size 1 it does
little arithmetic per byte read, so on CPUs and GPUs alike its time is bounded below by

    t(1) >= weight bytes / memory bandwidth          (the weight-streaming bound)

``memory_bandwidth`` measures the bandwidth with a large tensor copy (each byte is read
once and written once, so the copy moves twice the tensor's bytes); ``weight_bytes``
counts the weights a one-token pass reads, each once: tied embeddings once, as the LM
head, and an input embedding table of its own not at all, since a lookup reads one row
of it (Qwen2.5-Coder-0.5B as loaded from its GGUF file has one: a fifth of its weights).
The doctor reports t(1) against the bound per dtype: a ratio near 1 means decoding is as
fast as the memory allows and only fewer calls (speculation) can help; a large ratio means
time is lost in the forward itself (kernels, Python, dispatch), which compilation can win
back.
"""

from __future__ import annotations

import time

import torch


def weight_bytes(model) -> int:
    """Bytes a one-token forward pass streams: parameters and buffers, each storage once (tied weights once).

    An input embedding table that is not also the LM head is left out: the pass gathers
    one of its rows, it does not stream it. (Modules without ``get_input_embeddings``
    count everything.)"""
    def key(tensor):
        return tensor.device, tensor.untyped_storage().data_ptr()

    seen = set()
    lookup = getattr(model, "get_input_embeddings", lambda: None)()
    head = getattr(model, "get_output_embeddings", lambda: None)()
    if lookup is not None and (head is None or key(head.weight) != key(lookup.weight)):
        seen.add(key(lookup.weight))  # untied: gathered row by row, never streamed
    total = 0
    for tensor in list(model.parameters()) + list(model.buffers()):
        if (storage := key(tensor)) not in seen:
            seen.add(storage)
            total += tensor.numel() * tensor.element_size()
    return total


def memory_bandwidth(device="cpu", *, megabytes: int = 512, repeats: int = 7) -> float:
    """Bytes per second of the fastest of ``repeats`` ``megabytes``-MB tensor copies on ``device`` (read + write counted).

    The tensor is far larger than any cache, so the figure is the memory's, not a cache's.
    The fastest copy, not the median: the figure feeds a lower bound, and a copy slowed by
    another process on a shared machine says nothing about the memory.
    """
    if megabytes < 1 or repeats < 1:
        raise ValueError("megabytes and repeats must be >= 1")
    device = torch.device(device)
    n = megabytes * 2**20 // 4
    src = torch.ones(n, dtype=torch.float32, device=device)  # (n,)
    dst = torch.empty_like(src)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    dst.copy_(src)  # first touch: page faults are not bandwidth
    sync()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        dst.copy_(src)
        sync()
        seconds.append(time.perf_counter() - start)
    return 2 * src.numel() * src.element_size() / min(seconds)


def streaming_bound(num_bytes: int, bandwidth: float) -> float:
    """Seconds to read ``num_bytes`` once at ``bandwidth`` bytes per second (a lower bound on t(1))."""
    if bandwidth <= 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
    return num_bytes / bandwidth
