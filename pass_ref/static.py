"""The compiled static-cache fast path: every decoding method, unchanged, on fixed-shape calls.

Eager decoding spends part of every call outside the arithmetic (Python, small kernels,
reallocating the growing cache), one reason why t(n) on a CPU stays well above the time
the weights take to stream from memory (``python -m pass_ref doctor``). The recipe that
removes it, the one transformers and gpt-fast use for autoregressive decoding, also
suits speculative decoding:

- one **static KV cache** preallocated to ``max_cache_len`` positions. Cropping moves the
  write position back; stale keys beyond it are hidden by the attention mask, never freed;
- calls of a **few fixed sizes** (``sizes``, e.g. 1 for a token, L + 1 for PaSS's drafting
  and validation calls, 1 + K + G L for one-call PaSS). A call of Q inputs is padded to the
  smallest size >= Q: pad rows sit after the real ones (no real row sees them), and their
  keys/values are cropped with the look-ahead ones;
- ``torch.compile`` of the decoder and the LM head for each size, with inductor weight
  freezing (prepacked matmuls) for the sizes in ``freeze`` and CUDA graphs on GPU. The
  head computes every row of the block: PaSS's calls keep all their rows, and a few rows
  cost about what one does while the head's weights stream from memory. Guards on the
  model's modules are skipped (the model is frozen);
- optionally (``autotune=True``) inductor's **GEMM autotuning**: each matmul of a graph is
  timed at compile time as ATen's kernel and as inductor's own generated one (a C++
  micro-kernel template on CPU, Triton on GPU), and the faster is kept. It costs minutes of
  compilation per size and pays most where the CPU lacks native bfloat16 instructions.

``static_model(model)`` returns a copy of the model that shares its weights, with a
``StaticDecoding`` attached as ``.pass_ref_static``; ``pass_ref.cache.open_cache`` then
hands the loop a ``StaticCachedModel``, which has the ``CachedModel`` verbs. The first
call (the prompt) runs eagerly at its exact size, or, with ``prefill_sizes``, padded to the
smallest prefill size that holds it through a compiled decoder (the LM head then runs on
the kept rows only); a call larger than the largest size runs eagerly at its exact size.
The copy's attention is ``pass_ref.attention``'s: the eager math (plain matmul and softmax;
PyTorch's fused CPU kernel is slow for one bfloat16 query) with each key/value head read
once, where transformers' eager attention copies it for every query head that shares it.

Exactness: the attention sees exactly the real positions, so the logits equal the eager
path's up to floating-point reordering (a masked softmax over ``max_cache_len`` columns
instead of the cached ones: about 1e-6 even in float64, because attention probabilities are
computed in float32). Tests therefore assert equal greedy tokens, for every method, and the
sampled law on the static path (``tests/test_static.py``). In bfloat16, compiled kernels
round differently from eager ones, so greedy tokens may differ from eager bfloat16's.

Shapes: ``P`` cached positions, ``Q`` real inputs of a call (tokens and extra vectors),
``B`` the padded size, ``C`` = ``max_cache_len``, ``D`` hidden size, ``V`` vocabulary.
"""

from __future__ import annotations

import copy
import types
from pathlib import Path
from typing import Sequence

import torch
from transformers import StaticCache

from .attention import register as register_attention
from .cache import CachedModel, ExtraInputs
from .layer_inputs import DELTA_KWARG, decoder_layers, install_delta_hooks

DTYPES = {"cpu": (torch.float32, torch.bfloat16, torch.float64), "cuda": (torch.float32, torch.bfloat16, torch.float16)}
MAX_SIZES = 8  # each size is compiled on its own, about half a minute apiece on a laptop CPU
MAX_PREFILL_SIZES = 4  # prompt buckets: each is compiled on its own too, and a large one takes minutes
AUTOTUNE_BACKENDS = {"cpu": "CPP,ATEN", "cuda": "TRITON,ATEN"}  # the GEMM kernels autotuning chooses from
FROZEN_OVERHEAD = 1.25  # memory a compilation takes over its frozen copies' bytes: SmolLM2 float32 grew 1.41x them with
# 2 frozen sizes and 1.22x with 3 (process RSS); a Qwen run estimated at 20.4 GB was killed above 24 GB


def _own_code(method, tag: str = ""):
    """``method`` bound to the same object through a code object of its own (torch.compile caches per code object)."""
    function = method.__func__
    code = function.__code__.replace(co_name=f"{function.__name__}_{id(method.__self__):x}{tag and '_' + tag}")
    return types.MethodType(types.FunctionType(code, function.__globals__, code.co_name, function.__defaults__,
                                               function.__closure__), method.__self__)


class _StaticCache(StaticCache):
    """transformers' ``StaticCache`` whose ``crop`` moves every layer's write position in one foreach op.

    (The parent crops layer by layer: one small op per layer, 30 for SmolLM2, and the decoding
    loop crops up to three times per iteration.)
    """

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove > 0:
            raise RuntimeError("a static cache is cropped by a negative number of tokens to remove")
        torch._foreach_sub_([layer.cumulative_length for layer in self.layers], -tokens_to_remove)


def _check_model(model) -> torch.device:
    """The one device the model lives on, with a dtype the fast path supports; else a clear error."""
    devices = {p.device for p in model.parameters()}
    if len(devices) != 1:
        raise ValueError(f"the static fast path needs the whole model on one device; it is spread over {sorted(map(str, devices))}")
    device = devices.pop()
    dtype = model.get_input_embeddings().weight.dtype
    if device.type not in DTYPES or dtype not in DTYPES[device.type]:
        raise ValueError(f"the static fast path supports {DTYPES} (device type: dtypes); the model is {dtype} on {device}")
    decoder_layers(model)  # decoder-only models with model.model.layers
    if getattr(model.config, "final_logit_softcapping", None):
        raise ValueError("the static fast path applies the LM head itself and does not support final_logit_softcapping")
    if any(t != "full_attention" for t in getattr(model.config, "layer_types", None) or []):
        raise ValueError("the static fast path supports full-attention layers only (no sliding window)")
    return device


def _check_freeze(freeze: bool | Sequence[int], sizes: tuple[int, ...]) -> frozenset[int]:
    """The sizes whose compiled graphs are frozen: all (True), none (False) or those listed (each one of ``sizes``)."""
    if isinstance(freeze, bool):
        return frozenset(sizes if freeze else ())
    if isinstance(freeze, (str, bytes)) or not isinstance(freeze, Sequence) or not set(freeze) <= set(sizes):
        raise ValueError(f"freeze must be True, False or some of the call sizes {list(sizes)}, got {freeze!r}")
    return frozenset(freeze)


def _check_sizes(sizes: Sequence[int], max_cache_len: int, *, name: str = "sizes", most: int = MAX_SIZES,
                 empty: bool = False) -> tuple[int, ...]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or (not sizes and not empty) or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"{name} must be {'a list of ' if empty else ''}positive ints, got {sizes!r}")
    sizes = tuple(sorted(set(sizes)))
    if len(sizes) > most:
        raise ValueError(f"at most {most} {name} (each is compiled separately), got {len(sizes)}")
    if sizes and sizes[-1] >= max_cache_len:
        raise ValueError(f"the largest of {name} ({sizes[-1]}) must be below max_cache_len ({max_cache_len})")
    return sizes


def frozen_weight_bytes(model, *, sizes: Sequence[int], freeze: bool | Sequence[int] = True, prefill_sizes: Sequence[int] = (),
                        dtype: torch.dtype | None = None) -> int:
    """Bytes the compiled graphs of ``static_model(model, sizes=, freeze=, prefill_sizes=)`` hold beyond the model itself.

    A frozen graph keeps its own prepacked copy of every weight it reads: the decoder's and the
    LM head's for each size in ``freeze``, the decoder's for each prefill size (always frozen).
    The input embedding table is read outside the graphs and never copied; a plain-weight graph
    reads the model's tensors and adds nothing. ``dtype``: count as if the model were cast to it.
    (Qwen2.5-Coder-0.5B in float32 with 5 frozen sizes and 2 prefill sizes: 12.7 GB.) Compiling takes
    more than the copies: the checks below ask for ``FROZEN_OVERHEAD`` times this.
    """
    frozen = _check_freeze(freeze, tuple(sorted(set(sizes))))
    table = model.get_input_embeddings().weight

    def numel(tensors, skip=()) -> int:  # each storage once (tied weights)
        seen, total = set(skip), 0
        for t in tensors:
            if (key := t.untyped_storage().data_ptr()) not in seen:
                seen.add(key)
                total += t.numel()
        return total

    decoder = model.get_decoder()
    body = numel([*decoder.parameters(), *decoder.buffers()], skip={table.untyped_storage().data_ptr()})
    head = numel(model.get_output_embeddings().parameters())
    itemsize = (dtype or table.dtype).itemsize
    return itemsize * (len(frozen) * (body + head) + len(set(prefill_sizes)) * body)


def available_memory(device: torch.device | str = "cpu") -> int | None:
    """Bytes still free on ``device``: a CUDA device's free memory; on Linux the kernel's MemAvailable,
    capped by the container's memory limit (cgroup v2) when there is one. None where unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    free = None
    try:
        with open("/proc/meminfo") as f:
            free = next((int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")), None)
        limit, used = (Path("/sys/fs/cgroup", name).read_text().strip() for name in ("memory.max", "memory.current"))
        if limit != "max" and free is not None:
            free = min(free, int(limit) - int(used))
    except (OSError, ValueError):
        pass
    return free


def check_memory(needed: int, device: torch.device | str, what: str, hint: str) -> None:
    """Raise a ``MemoryError`` naming ``what`` and ``hint`` if ``needed`` bytes exceed ``available_memory(device)``
    (before minutes of compilation end in the kernel's out-of-memory kill); nothing where that is unknown."""
    free = available_memory(device)
    if free is not None and needed > free:
        raise MemoryError(f"{what} needs about {needed / 2**30:.1f} GiB, but {free / 2**30:.1f} GiB is free on {device}: {hint}")


class StaticDecoding:
    """A model's static KV cache and its compiled calls (one per size); see the module docstring.

    Attributes:
        sizes: the compiled call sizes, ascending.
        max_cache_len: positions the cache holds (prompt + new tokens + positions ahead).
        compiled: whether the decoder is compiled (False: the same static path, eager).
        frozen: the compiled sizes whose graph is frozen (weights prepacked as constants); the
            others' graphs read the model's weight tensors.
        prefill_sizes: the compiled sizes of the prompt's call (its decoder; empty: the prompt runs eagerly).
        warmed: the sizes already run once (compiled, when ``compiled``).
        autotune: whether each graph's matmuls were autotuned at compile time.
        calls_by_size: how many calls ran at each padded size; ``eager_calls`` those run at their exact size;
            ``prefill_calls_by_size`` the prompts run at each prefill size.
    """

    def __init__(self, model, *, sizes: Sequence[int], max_cache_len: int, compile: bool,
                 freeze: bool | Sequence[int] = True, autotune: bool = False, prefill_sizes: Sequence[int] = ()) -> None:
        if not isinstance(autotune, bool):
            raise ValueError(f"autotune must be True or False, got {autotune!r}")
        if autotune and not compile:
            raise ValueError("autotune=True tunes compiled graphs: it needs compile=True")
        if isinstance(max_cache_len, bool) or not isinstance(max_cache_len, int) or max_cache_len < 2:
            raise ValueError(f"max_cache_len must be an int >= 2, got {max_cache_len!r}")
        self.device = _check_model(model)
        self.model, self.max_cache_len = model, max_cache_len
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit is not None and max_cache_len > limit:
            raise ValueError(f"max_cache_len ({max_cache_len}) exceeds the model's context of {limit}")
        self.sizes = _check_sizes(sizes, max_cache_len)
        self.prefill_sizes = _check_sizes(prefill_sizes, max_cache_len, name="prefill_sizes", most=MAX_PREFILL_SIZES, empty=True)
        frozen = _check_freeze(freeze, self.sizes)
        self.frozen = frozen if compile else frozenset()
        if compile:
            check_memory(int(FROZEN_OVERHEAD * frozen_weight_bytes(model, sizes=self.sizes, freeze=sorted(frozen),
                                                                   prefill_sizes=self.prefill_sizes)), self.device,
                         f"compiling {len(frozen)} frozen sizes and {len(self.prefill_sizes)} prefill sizes (a copy of the weights each)",
                         "freeze fewer sizes (freeze=[...] or False) or compile fewer prefill sizes")
        self.dtype = model.get_input_embeddings().weight.dtype
        self.cache = _StaticCache(config=model.config, max_cache_len=max_cache_len)
        self.owner: StaticCachedModel | None = None
        self.compiled = bool(compile)
        self.autotune = autotune
        self.warmed: tuple[int, ...] = ()
        self.calls_by_size = {size: 0 for size in self.sizes}
        self.prefill_calls_by_size = {size: 0 for size in self.prefill_sizes}
        self.eager_calls = 0
        self._columns = torch.arange(max_cache_len, device=self.device)  # (C,)
        self._num_layers = len(decoder_layers(model))
        self._blocks: dict[int, tuple] = {}  # B -> (offsets (B,), causal block (B, B), zero delta (num_layers, B, D))
        install_delta_hooks(model)
        self._graphs: dict[tuple[int, bool], object] = {}  # (size, frozen) -> its compiled call, once built
        self._runs = {size: self._compiled(size, size in self.frozen) if compile else self._logits for size in self.sizes}
        self._prefills = {size: self._compiled(size, True, prefill=True) if compile else self._hidden for size in self.prefill_sizes}

    def _compiled(self, size: int, frozen: bool, prefill: bool = False):
        """The compiled call of ``size`` inputs, frozen or with plain weights (built on its first run, in ``warm_up``).

        ``prefill``: the prompt's call instead, the decoder alone (``_hidden``), always frozen.

        Guards on the model's modules are skipped: the model is frozen, so checking its hundreds
        of parameters before every call would only cost time. A frozen graph holds the weights
        as constants, and torch.compile caches graphs per code object, so each (size, frozen)
        gets its own copy of ``_logits``: another model of the same shapes, or another variant,
        never runs on this graph. (Freezing is switched on where the graph is built, in
        ``_build``: given in ``options`` it left plain matmuls in the graph, unpacked.)
        """
        key = ("prefill", size) if prefill else (size, frozen)
        if key not in self._graphs:
            options = {"triton.cudagraphs": self.device.type == "cuda",
                       "guard_filter_fn": torch.compiler.skip_guard_on_all_nn_modules_unsafe}
            tag = f"prefill_{size}" if prefill else f"{size}_{'frozen' if frozen else 'plain'}"
            self._graphs[key] = torch.compile(_own_code(self._hidden if prefill else self._logits, tag), dynamic=False,
                                              fullgraph=True, options=options)
        return self._graphs[key]

    def _decoder(self, embeds, offsets, block, delta):
        """The decoder on one block of B inputs after the cached ones: (1, B, D) in, last hidden states (1, B, D) out.

        ``offsets`` (B,): each input's position minus the cached length P; ``block`` (B, B)
        bool: which of the block's inputs each input sees (every input sees all P cached
        positions). Positions and the additive (1, 1, B, C) mask are built here, from the
        cache's own length counter, so a compiled call builds them inside its graph.
        """
        past = self.cache.layers[0].cumulative_length  # 0-d int64: P, before this call writes its keys
        rel = self._columns - past  # (C,): each cache column's index within the block (< 0: cached)
        seen = block[:, rel.clamp(0, block.shape[0] - 1)]  # (B, C): the block's pattern over its own columns
        allowed = (rel < 0) | ((rel < block.shape[0]) & seen)  # (B, C)
        mask = torch.zeros(allowed.shape, dtype=self.dtype, device=self.device).masked_fill(~allowed, torch.finfo(self.dtype).min)
        out = self.model.get_decoder()(inputs_embeds=embeds, position_ids=(past + offsets)[None], attention_mask=mask[None, None],
                                       cache=self.cache, use_cache=True, **{DELTA_KWARG: delta})
        return out.last_hidden_state

    def _logits(self, embeds, offsets, block, delta):
        """Decoder and LM head on one padded block: (1, B, D) in, (B, V) logits out.

        Every row gets logits: a padded call keeps nearly all of its rows (PaSS's calls keep
        them all), and a few rows cost no more than one while the head's weights stream.
        """
        return self.model.get_output_embeddings()(self._decoder(embeds, offsets, block, delta)[0])

    def _hidden(self, embeds, offsets, block, delta):
        """The decoder alone on one padded block, for the prompt's call: (1, B, D) in, (B, D) last hidden states out."""
        return self._decoder(embeds, offsets, block, delta)[0]

    def _run(self, B: int, embeds, offsets, block, delta):
        """One padded call of size B through that size's graph (compiled, frozen or not, or eager): (B, V) logits."""
        return self._runs[B](embeds, offsets, block, delta)

    def _prefill(self, embeds, offsets, block, delta, rows: slice, B: int | None = None):
        """The prompt's call, eager at its exact length (``B`` None) or through prefill size B's graph:
        (1, Q or B, D) in, logits of ``rows`` only out (the LM head on those rows alone)."""
        hidden = self._decoder(embeds, offsets, block, delta)[0] if B is None else self._prefills[B](embeds, offsets, block, delta)
        return self.model.get_output_embeddings()(hidden[rows])

    def block_inputs(self, B: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A plain block of B inputs: offsets 0..B-1, causal within the block, no layer delta.

        Built once for each compiled size (read-only: a caller that changes one clones it first)."""
        if B in self._blocks:
            return self._blocks[B]
        D = self.model.get_input_embeddings().weight.shape[1]
        inputs = (torch.arange(B, device=self.device), torch.ones(B, B, dtype=torch.bool, device=self.device).tril(),
                  torch.zeros(self._num_layers, B, D, dtype=self.dtype, device=self.device))
        if B in self.sizes or B in self.prefill_sizes:
            self._blocks[B] = inputs
        return inputs

    def open(self) -> "StaticCachedModel":
        """A fresh cache view for one decode; any earlier view of this model becomes unusable."""
        length = int(self.cache.get_seq_length())
        if length:
            self.cache.crop(-length)  # back to position 0; stale keys stay, masked
        self.owner = StaticCachedModel(self)
        return self.owner

    def warm_up(self, progress: bool = True) -> None:
        """Run each size once on a dummy prompt, so that compilation happens now, not mid-decode.

        Prefill sizes come first, so that the decode sizes' dummy prompts use their graphs.
        (The core holds no clock: time this call from outside to know what compilation costs.)
        """
        for i, size in enumerate(self.prefill_sizes):
            if progress:
                print(f"static path: compiling prefill size {size} ({i + 1} of {len(self.prefill_sizes)}) ...", flush=True)
            self._build(size, True, prefill=True)
        for i, size in enumerate(self.sizes):
            if progress:
                kind = "frozen" if size in self.frozen else "plain weights"
                print(f"static path: compiling size {size}, {kind} ({i + 1} of {len(self.sizes)}) ...", flush=True)
            self._build(size, size in self.frozen)
            self.warmed += (size,)

    def _build(self, size: int, frozen: bool, prefill: bool = False) -> None:
        """Run the (size, frozen) graph once on a dummy prompt, so that it compiles now; calls of ``size`` then use it.

        ``prefill``: the prompt's graph of prefill size ``size`` instead, run on a dummy prompt of that length."""
        import torch._inductor.config as inductor_config

        if prefill:
            self._prefills[size] = self._compiled(size, True, prefill=True) if self.compiled else self._hidden
        else:
            self._runs[size] = self._compiled(size, frozen) if self.compiled else self._logits
        counts = dict(self.calls_by_size), dict(self.prefill_calls_by_size), self.eager_calls  # the dummy calls are not counted
        tuning = {"max_autotune": True, "max_autotune_gemm_backends": AUTOTUNE_BACKENDS[self.device.type]} if self.autotune else {}
        with torch.inference_mode(), inductor_config.patch(freezing=self.compiled and frozen, **tuning):
            for _ in range(2 if self.device.type == "cuda" else 1):  # CUDA graphs record on the second call
                if prefill:
                    self.open().forward([0] * size, keep=1)
                    continue
                cached = self.open()
                cached.forward([0])
                cached.forward([0] * size)
        self.open()
        self.calls_by_size, self.prefill_calls_by_size, self.eager_calls = counts

    def use_freezing(self, size: int, frozen: bool, *, drop_other: bool = False) -> None:
        """Make calls of ``size`` run its frozen (prepacked) graph or its plain-weight one, compiling it if needed.

        Which is faster depends on the CPU and the call size (``docs/architecture.md``);
        ``pass_ref.experiments.latency.choose_freezing`` times both. ``drop_other``: forget
        the other variant's graph (a frozen graph holds its own copy of the weights). Call it
        between decodes: it reopens the cache.
        """
        if not self.compiled or size not in self.sizes:
            raise ValueError(f"freezing applies to the compiled sizes {list(self.sizes) if self.compiled else []}, not {size}")
        if self._runs[size] is not self._graphs.get((size, frozen)):
            self._build(size, frozen)
        self.frozen = self.frozen | {size} if frozen else self.frozen - {size}
        if drop_other:
            self._graphs.pop((size, not frozen), None)

    def bucket(self, past: int, Q: int) -> int | None:
        """The padded size of a call of Q inputs after ``past`` cached positions (None: run it eagerly).

        The prompt's call (``past`` 0) is padded to a prefill size, if one holds it."""
        if past + Q > self.max_cache_len:
            raise ValueError(f"a call reaching position {past + Q} exceeds the static cache's max_cache_len of "
                             f"{self.max_cache_len}; pass a larger max_cache_len to static_model")
        for size in self.prefill_sizes if past == 0 else self.sizes:
            if size >= Q:
                return size if past + size <= self.max_cache_len else None
        return None


class StaticCachedModel(CachedModel):
    """``CachedModel``'s verbs on a ``StaticDecoding``'s cache; calls are padded to its sizes."""

    def __init__(self, decoding: StaticDecoding) -> None:
        super().__init__(decoding.model, cache=decoding.cache)
        self.decoding = decoding
        self.max_positions = decoding.max_cache_len

    def _owned(self) -> StaticDecoding:
        if self.decoding.owner is not self:
            raise RuntimeError("this static cache was reopened by another decode (one static cache per model: "
                               "give a draft model its own model object)")
        return self.decoding

    @torch.inference_mode()  # the cache's tensors are inference tensors: every update happens in this mode
    def _call(self, ids: torch.Tensor, extra: ExtraInputs | None, keep: int | None) -> torch.Tensor:
        s = self._owned()
        T, M = ids.shape[1], 0 if extra is None else extra.embeds.shape[0]
        P, Q = self.length, T + M
        B = s.bucket(P, Q)
        size = Q if B is None else B
        offsets, block, delta = s.block_inputs(size)  # (B,), (B, B), (num_layers, B, D)
        inputs = self.model.get_input_embeddings()(ids)  # (1, T, D)
        if extra is not None or size > Q:
            parts = [inputs[0]] if extra is None else [inputs[0], extra.embeds.to(inputs.device, inputs.dtype)]
            inputs = torch.cat(parts + [inputs.new_zeros(size - Q, inputs.shape[2])])[None]  # (1, B, D)
        if extra is not None and extra.attention_mask is not None:  # a drafter's own layout (one-call PaSS's groups)
            custom = extra.attention_mask[0, 0].to(s.device) == 0  # (Q, P + Q) allowed
            if not bool(custom[:, :P].all()):
                raise ValueError("the static path needs every input to see every cached position; this mask hides some")
            block = block.clone()
            block[:Q, :Q] = custom[:, P:]
            block[:Q, Q:] = False  # real rows never see the pad rows (pad rows keep their causal rows)
            offsets = torch.cat([extra.position_ids[0].to(s.device) - P, offsets[Q:]])  # (B,)
        if extra is not None and extra.layer_delta is not None:
            delta = delta.clone()
            delta[:, T:Q] = extra.layer_delta.to(delta.device, delta.dtype)
        first = 0 if keep is None else T - keep
        if P == 0:  # the prompt: the LM head only on the rows kept
            if B is None:
                s.eager_calls += 1
            else:
                s.prefill_calls_by_size[B] += 1
            logits = s._prefill(inputs, offsets, block, delta, slice(first, Q), B)  # (Q - first, V)
            if size > Q:
                self.cache.crop(Q - size)  # pad rows leave no KV
        elif B is None:  # a call larger than every size
            s.eager_calls += 1
            logits = s._prefill(inputs, offsets, block, delta, slice(first, Q))  # (Q - first, V)
        else:
            s.calls_by_size[B] += 1
            logits = s._run(B, inputs, offsets, block, delta)[first:Q]  # (Q - first, V)
            if s.device.type == "cuda":
                logits = logits.clone()  # a CUDA graph's output is overwritten by its next replay
            if size > Q:
                self.cache.crop(Q - size)  # pad rows leave no KV
        return logits


def static_model(model, *, sizes: Sequence[int] = (1, 5, 16), max_cache_len: int = 1024, compile: bool = True,
                 freeze: bool | Sequence[int] = True, autotune: bool = False, prefill_sizes: Sequence[int] = (),
                 progress: bool = True):
    """A copy of ``model`` on the static-cache fast path, sharing its weights; every decoding method runs on it unchanged.

    Args:
        model: a decoder-only transformers causal LM on one device (CPU: float32, bfloat16,
            float64; CUDA: float32, bfloat16, float16). It is not changed.
        sizes: the call sizes to compile (at most 8). Pick the calls your method makes:
            1 (a token; autoregressive decoding, draft models), L + 1 (PaSS's drafting and
            validation calls, K + 1 verification), 1 + K + G L (one-call PaSS with G groups).
            A call is padded to the smallest size that holds it.
        max_cache_len: positions preallocated: prompt + new tokens + positions ahead.
            Attention reads every one of them, so keep it near what you need.
        compile: compile each size now (``torch.compile``; CUDA graphs on GPU), which takes
            about half a minute per size on a laptop CPU. False gives the same static path
            uncompiled.
        freeze: the sizes compiled with inductor freezing: True (all), False (none) or a list.
            A frozen graph holds the weights as constants, prepacked for the CPU's matmul
            library, and is compiled again in every new process (inductor's disk cache cannot
            hold prepacked weights); a plain-weight graph reads the model's tensors and loads
            from that cache in later processes. Which runs faster depends on the CPU and the
            call size (``docs/architecture.md``): ``latency.choose_freezing`` times both.
            Each frozen graph (prefill graphs too) holds its own copy of the weights it reads
            (``frozen_weight_bytes``): a ``MemoryError`` before compiling if they cannot fit.
        autotune: time each matmul at compile time as ATen's kernel and as inductor's
            generated one (C++ template on CPU, Triton on GPU) and keep the faster. On a CPU
            without bfloat16 instructions it halved bfloat16 calls of 5 tokens and cut one-token
            calls by a third, but slowed float32's 5-token calls (``docs/architecture.md``);
            compilation takes minutes per size. The C++ template reads prepacked constant
            weights, so it applies to frozen sizes.
        prefill_sizes: compiled sizes for the prompt's call (at most 4; default none: the
            prompt runs eagerly at its exact length). A prompt is padded to the smallest one
            that holds it (pad rows after the real ones, cropped after the call); a longer one
            runs eagerly. Its graph is the decoder alone, frozen, and the LM head runs on the
            kept rows only. Worth it where the prompt's call is a large share of a decode and
            a compiled block beats the eager one: on a CPU without bfloat16 instructions an
            autotuned bfloat16 prompt of 115-125 tokens padded to 128 took 0.69-0.74 of the
            eager call's time (``docs/architecture.md``).
        progress: print a line as each size starts compiling.
    Returns:
        the copy, with ``.pass_ref_static`` (a ``StaticDecoding``: its sizes and per-size
        call counts). Its attention is ``pass_ref.attention.grouped_attention``
        (plain matmul and softmax, which inductor fuses, without copying shared key/value
        heads): on CPUs, PyTorch's fused attention kernel is slow for a single bfloat16 query.
    """
    _check_model(model)
    shared = {id(t): t for t in (*model.parameters(), *model.buffers())}
    fast = copy.deepcopy(model, shared)  # new modules and config, the same weight tensors
    fast.set_attn_implementation(register_attention())
    fast.pass_ref_static = StaticDecoding(fast, sizes=sizes, max_cache_len=max_cache_len, compile=compile, freeze=freeze,
                                          autotune=autotune, prefill_sizes=prefill_sizes)
    if compile:
        fast.pass_ref_static.warm_up(progress)
    return fast
