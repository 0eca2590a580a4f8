"""PaSS (Parallel Speculative Sampling) as a transformers ``custom_generate`` repository.

transformers imports this file when ``generate`` is given this folder:

    model.generate(ids, custom_generate=str(pass_ref.hf.custom_generate_dir()), trust_remote_code=True,
                   lookahead=la, max_new_tokens=64)

It hands everything back to ``generate`` with ``pass_ref.hf.pass_decoding`` as the
decoding method (``pass_ref.hf.generate``), so generation config, stopping criteria and
streamers are prepared by transformers and the loop is the package's own.
"""

from pass_ref.hf import generate as pass_generate_route


def generate(model, *args, **kwargs):
    """``model.generate(*args, **kwargs)`` decoded by PaSS (``lookahead=`` is required)."""
    return pass_generate_route(model, *args, **kwargs)
