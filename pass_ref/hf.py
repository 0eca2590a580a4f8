"""PaSS inside ``model.generate``: the ``custom_generate`` route of transformers.

transformers 5 lets a decoding loop replace ``generate``'s own while keeping everything
``generate`` prepares: the ``GenerationConfig`` merged with the call's arguments, the
logits processors, the stopping criteria (``max_new_tokens``, ``eos_token_id``,
``stop_strings``, user criteria), the streamer. Two ways in, both running the package's
one loop (``pass_ref.loop.decode``) with ``pass_generate``'s drafter, or with any method
of the table (``method="lookup", method_options={"num_draft_tokens": 8}``):

    # a callable
    out = model.generate(ids, custom_generate=pass_ref.hf.pass_decoding, lookahead=la, max_new_tokens=64)

    # a local folder laid out like a Hub custom-generate repository (works offline)
    out = model.generate(ids, custom_generate=str(pass_ref.hf.custom_generate_dir()), trust_remote_code=True,
                         lookahead=la, max_new_tokens=64)

Exactness decides what is honoured. The accept/reject rule needs the target's processed
law at every position, which ``SamplingConfig`` computes from temperature, top-k and
top-p (``sampling_from_processors`` fills the ``DecodingConfig``); any other logits processor
(repetition penalty, min length, bad words, ...) would
change that law in ways the loop does not reproduce, so it is refused with a
``ValueError`` that names the option, as are beams, batches and
``num_return_sequences > 1``. Stopping criteria are asked after every committed token,
so a speculative block that runs past a stop string or EOS is cut exactly where
``generate`` would stop.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch

from .config import DecodingConfig
from .generate import pass_drafter
from .lookahead import LookaheadEmbeddings
from .loop import decode
from .methods import make_drafter
from .sampling import SamplingConfig

# GenerationConfig fields behind the logits processors transformers may build: named in errors.
_PROCESSOR_OPTIONS = {
    "RepetitionPenaltyLogitsProcessor": "repetition_penalty",
    "EncoderRepetitionPenaltyLogitsProcessor": "encoder_repetition_penalty",
    "NoRepeatNGramLogitsProcessor": "no_repeat_ngram_size",
    "EncoderNoRepeatNGramLogitsProcessor": "encoder_no_repeat_ngram_size",
    "NoBadWordsLogitsProcessor": "bad_words_ids",
    "SequenceBiasLogitsProcessor": "sequence_bias",
    "MinLengthLogitsProcessor": "min_length",
    "MinNewTokensLengthLogitsProcessor": "min_new_tokens",
    "MinPLogitsWarper": "min_p",
    "TypicalLogitsWarper": "typical_p",
    "EpsilonLogitsWarper": "epsilon_cutoff",
    "EtaLogitsWarper": "eta_cutoff",
    "SuppressTokensLogitsProcessor": "suppress_tokens",
    "SuppressTokensAtBeginLogitsProcessor": "begin_suppress_tokens",
    "ForcedBOSTokenLogitsProcessor": "forced_bos_token_id",
    "ForcedEOSTokenLogitsProcessor": "forced_eos_token_id",
    "ExponentialDecayLengthPenalty": "exponential_decay_length_penalty",
    "LogitNormalization": "renormalize_logits",
    "InfNanRemoveLogitsProcessor": "remove_invalid_values",
    "PrefixConstrainedLogitsProcessor": "prefix_allowed_tokens_fn",
    "UnbatchedClassifierFreeGuidanceLogitsProcessor": "guidance_scale",
    "ClassifierFreeGuidanceLogitsProcessor": "guidance_scale",
    "DRYLogitsProcessor": "dry_multiplier",
    "WatermarkLogitsProcessor": "watermarking_config",
    "SynthIDTextWatermarkLogitsProcessor": "watermarking_config",
}
# GenerationConfig fields that ask for something the loop does not make.
_REFUSED_FLAGS = ("output_scores", "output_logits", "output_attentions", "output_hidden_states")

HONOURED = ("do_sample", "temperature", "top_k", "top_p", "max_new_tokens", "max_length", "eos_token_id",
            "stop_strings", "stopping_criteria", "streamer", "return_dict_in_generate")
REFUSED = ("num_beams > 1", "num_return_sequences > 1", "batch size > 1", "assistant_model",
           "prompt_lookup_num_tokens", "cache (a filled one)", "attention_mask with padding", "synced_gpus",
           *_REFUSED_FLAGS, *sorted(set(_PROCESSOR_OPTIONS.values())), "logits_processor (any other)")


def generate(model, *args, **kwargs):
    """``model.generate(*args, **kwargs)`` decoded by PaSS: the folder route's entry point.

    The same as ``generate(custom_generate=pass_decoding, ...)``, plus ``stop_strings``:
    transformers 5 drops ``tokenizer=`` before calling a ``custom_generate`` callable, so
    here the stop strings become a ``StopStringCriteria`` built with the tokenizer.
    """
    from transformers import GenerationMixin, StoppingCriteriaList, StopStringCriteria

    tokenizer = kwargs.pop("tokenizer", None)
    config = kwargs.get("generation_config") or model.generation_config
    stop_strings = kwargs.pop("stop_strings", None) or getattr(config, "stop_strings", None)
    if stop_strings:
        if tokenizer is None:
            raise ValueError("`stop_strings` need the model's tokenizer: pass tokenizer=...")
        if getattr(config, "stop_strings", None):
            config = copy.deepcopy(config)
            config.stop_strings = None
            kwargs["generation_config"] = config
        criteria = StoppingCriteriaList(kwargs.get("stopping_criteria") or [])
        criteria.append(StopStringCriteria(tokenizer, [stop_strings] if isinstance(stop_strings, str) else list(stop_strings)))
        kwargs["stopping_criteria"] = criteria
    return GenerationMixin.generate(model, *args, custom_generate=pass_decoding, **kwargs)


def custom_generate_dir() -> Path:
    """The folder for ``model.generate(custom_generate=str(path), trust_remote_code=True, ...)``.

    It is shipped inside the package and laid out like a Hub repository
    (``README.md`` model card, ``custom_generate/generate.py``), so the route works offline.
    """
    return Path(__file__).parent / "hub"


def sampling_from_processors(logits_processor, do_sample: bool) -> SamplingConfig:
    """The ``SamplingConfig`` equal to ``generate``'s prepared logits processors.

    Only temperature, top-k and top-p warpers (each at most once, keeping >= 1 token)
    have an exact PaSS counterpart; anything else raises ``ValueError`` naming the
    ``GenerationConfig`` option that produced it.
    """
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    found: dict[str, float | int] = {}
    for processor in logits_processor or ():
        name = type(processor).__name__
        if isinstance(processor, TemperatureLogitsWarper):
            key, value = "temperature", float(processor.temperature)
        elif isinstance(processor, TopKLogitsWarper):
            key, value = "top_k", int(processor.top_k)
        elif isinstance(processor, TopPLogitsWarper):
            key, value = "top_p", float(processor.top_p)
        else:
            option = _PROCESSOR_OPTIONS.get(name, f"logits_processor ({name})")
            raise ValueError(
                f"PaSS cannot honour `{option}` ({name}): it changes the model's law in a way the "
                "exact accept/reject rule does not reproduce; only temperature, top_k and top_p are supported"
            )
        if key in found:
            raise ValueError(f"`{key}` is set twice (a {name} in logits_processor as well?); give it once")
        if getattr(processor, "min_tokens_to_keep", 1) != 1:
            raise ValueError(f"`min_tokens_to_keep` = {processor.min_tokens_to_keep} is not supported (only 1)")
        found[key] = value
    if not do_sample:
        if found:
            raise ValueError(f"greedy decoding (do_sample=False) got sampling processors {sorted(found)}")
        return SamplingConfig(0.0)
    return SamplingConfig(float(found.get("temperature", 1.0)), found.get("top_k"), found.get("top_p"))


def _check_request(model, input_ids, generation_config, synced_gpus, model_kwargs) -> None:
    """Refuse, by name, what the loop cannot do exactly."""
    gc = generation_config
    if (gc.num_beams or 1) > 1:
        raise ValueError(f"`num_beams` = {gc.num_beams}: PaSS samples one sequence; beam search is not supported")
    if (gc.num_return_sequences or 1) > 1:
        raise ValueError(f"`num_return_sequences` = {gc.num_return_sequences}: call generate once per sequence")
    if input_ids.shape[0] != 1:
        raise ValueError(f"batch size {input_ids.shape[0]}: PaSS decodes one sequence at a time (batch size 1)")
    for option in ("min_new_tokens", "min_length"):
        if getattr(gc, option, None):
            raise ValueError(f"`{option}` = {getattr(gc, option)} is not supported: it masks EOS, changing the model's law")
    for flag in _REFUSED_FLAGS:
        if getattr(gc, flag, False):
            raise ValueError(f"`{flag}` is not supported by PaSS decoding (only `sequences` are returned)")
    if getattr(gc, "prompt_lookup_num_tokens", None):
        raise ValueError("`prompt_lookup_num_tokens`: pass prompt_lookup=True (and lookup_tokens=) to PaSS instead")
    if synced_gpus:
        raise ValueError("`synced_gpus` is not supported: PaSS runs the model on one process")
    mask = model_kwargs.get("attention_mask")
    if mask is not None and not bool((mask == 1).all()):
        raise ValueError("`attention_mask` with padding is not supported: give one unpadded prompt")
    cache = model_kwargs.get("cache", model_kwargs.get("past_key_values"))
    if cache is not None and (getattr(cache, "_is_user_defined", False) or cache.get_seq_length() > 0):
        raise ValueError("`cache`: PaSS keeps its own KV cache and cannot continue from a given one")
    unknown = set(model_kwargs) - {"attention_mask", "position_ids", "logits_to_keep", "cache", "past_key_values", "use_cache"}
    if unknown:
        raise ValueError(f"model arguments {sorted(unknown)} are not supported by PaSS decoding")


def _generate_arguments() -> dict:
    """The arguments of the ``generate`` call that is running ``pass_decoding``, if any.

    transformers 5 calls a ``custom_generate`` callable with only the arguments its own
    ``_sample`` lacks, after putting the prompt into the streamer: the ``streamer`` and
    ``assistant_model`` given to ``generate`` never arrive, and a streamer's ``end()``
    would never be called (a ``TextIteratorStreamer`` would wait forever). So they are
    read from ``generate``'s frame, two frames up (generate -> pass_decoding -> here).
    """
    caller = sys._getframe(2)
    if caller.f_code.co_name == "generate" and caller.f_locals.get("custom_generate") is pass_decoding:
        return caller.f_locals
    return {}


def pass_decoding(
    model,
    input_ids: torch.LongTensor,
    logits_processor,
    stopping_criteria,
    generation_config,
    synced_gpus: bool = False,
    streamer=None,
    lookahead: LookaheadEmbeddings | None = None,
    method: str | None = None,
    method_options: dict | None = None,
    num_lookahead: int | None = None,
    fused: bool = False,
    groups=None,
    prompt_lookup: bool = False,
    lookup_tokens: int | None = None,
    max_ngram: int = 3,
    generator: torch.Generator | None = None,
    **model_kwargs,
):
    """PaSS as a ``custom_generate`` decoding method (the signature ``generate`` calls).

    ``generate(..., custom_generate=pass_decoding, lookahead=la, ...)`` passes the look-ahead
    set and the PaSS options (``num_lookahead``, ``fused``, ``groups``, ``prompt_lookup``,
    ``lookup_tokens``, ``max_ngram``, as in ``pass_generate``) through; ``generator`` is
    optional (None: torch's global generator, as ``generate`` uses). ``method`` (a name of
    ``pass_ref.METHODS``, with ``method_options``) runs that method's drafter instead.

    Returns what ``generate`` returns: the ``(1, T + N)`` sequences, or a
    ``GenerateDecoderOnlyOutput`` with ``sequences`` when ``return_dict_in_generate``.
    Honoured: see ``HONOURED``; refused with ``ValueError`` naming the option: ``REFUSED``.
    """
    from transformers.generation.utils import GenerateDecoderOnlyOutput

    called_with = _generate_arguments()
    streamer = streamer if streamer is not None else called_with.get("streamer")
    try:  # generate has put the prompt into the streamer: end it whatever happens, or a reader waits forever
        if lookahead is None and method is None:
            raise ValueError("pass the look-ahead embeddings: model.generate(..., custom_generate=pass_decoding, lookahead=la)")
        if called_with.get("assistant_model") is not None:
            raise ValueError("`assistant_model`: PaSS drafts with look-ahead embeddings; drop the assistant model")
        _check_request(model, input_ids, generation_config, synced_gpus, model_kwargs)
        sampling = sampling_from_processors(logits_processor, bool(generation_config.do_sample))
        if method is None:
            drafter = pass_drafter(model, lookahead, num_lookahead, fused=fused, groups=groups, prompt_lookup=prompt_lookup,
                                   lookup_tokens=lookup_tokens, max_ngram=max_ngram)
        else:
            if num_lookahead is not None or fused or groups is not None or prompt_lookup or lookup_tokens is not None:
                raise ValueError("with `method`, give the drafter's options in method_options, not as PaSS keywords")
            drafter = make_drafter(method, model, lookahead, **(method_options or {}))
        prompt = input_ids[0].tolist()
        max_new_tokens = generation_config.max_length - len(prompt)
        if max_new_tokens < 1:
            raise ValueError(f"max_length {generation_config.max_length} leaves no room after the {len(prompt)}-token prompt")
        criteria = list(stopping_criteria or ())

        def stop(new_tokens) -> bool:  # generate's criteria, asked after every committed token
            ids = torch.tensor([prompt + list(new_tokens)], device=input_ids.device)  # (1, T + n)
            return any(bool(criterion(ids, None).any()) for criterion in criteria)

        def on_tokens(tokens) -> None:
            streamer.put(torch.tensor(tokens))

        config = DecodingConfig(max_new_tokens, sampling, stop=stop, generator=generator)
        out = decode(model, drafter, input_ids, config, on_tokens=on_tokens if streamer is not None else None)
    finally:
        if streamer is not None:
            streamer.end()
    sequences = out.sequences[None].to(input_ids.device)  # (1, T + N)
    if generation_config.return_dict_in_generate:
        return GenerateDecoderOnlyOutput(sequences=sequences)
    return sequences
