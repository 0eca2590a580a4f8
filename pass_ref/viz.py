"""Showing generations: highlighted tokens (terminal and HTML) and one-line summaries.

Colours: accepted drafts green, corrected tokens (residual samples after a rejection)
orange, bonus tokens blue, exact target samples plain; a rejected draft is shown struck
through just before the token that replaced it.
"""

from __future__ import annotations

import html

from .outputs import ACCEPTED, BONUS, CORRECTED, EXACT, GenerationOutput

_ANSI = {ACCEPTED: "\x1b[42;30m", CORRECTED: "\x1b[43;30m", BONUS: "\x1b[44;37m", EXACT: ""}
_ANSI_REJECTED = "\x1b[9;31m"
_ANSI_RESET = "\x1b[0m"
_CSS = {
    ACCEPTED: "background:#b7e4b0",
    CORRECTED: "background:#ffd59e",
    BONUS: "background:#b3d4fc",
    EXACT: "",
}


def _pieces(output: GenerationOutput, tokenizer) -> list[tuple[str, str]]:
    """(text, kind) for each new token, rejected drafts inserted before their replacement."""
    rejected = {}
    for index, token in output.rejected:
        rejected.setdefault(index, []).append(token)
    pieces = []
    for i, (token, source) in enumerate(zip(output.new_tokens.tolist(), output.sources)):
        for bad in rejected.get(i, []):
            pieces.append((tokenizer.decode([bad]), "rejected"))
        pieces.append((tokenizer.decode([token]), source))
    return pieces


def highlight_terminal(output: GenerationOutput, tokenizer, *, show_rejected: bool = False) -> str:
    """The completion as a string with ANSI colours marking where each token came from."""
    parts = []
    for text, kind in _pieces(output, tokenizer):
        if kind == "rejected":
            if show_rejected:
                parts.append(f"{_ANSI_REJECTED}{text}{_ANSI_RESET}")
        elif _ANSI[kind]:
            parts.append(f"{_ANSI[kind]}{text}{_ANSI_RESET}")
        else:
            parts.append(text)
    return "".join(parts)


def legend_terminal() -> str:
    """One line explaining the terminal colours."""
    return (
        f"{_ANSI[ACCEPTED]}accepted draft{_ANSI_RESET} {_ANSI[CORRECTED]}corrected{_ANSI_RESET} "
        f"{_ANSI[BONUS]}bonus{_ANSI_RESET} plain = sampled from the target"
    )


def highlight_html(output: GenerationOutput, tokenizer, *, show_rejected: bool = True) -> str:
    """The completion as an HTML ``<pre>`` block with coloured token spans and a legend."""
    spans = []
    for text, kind in _pieces(output, tokenizer):
        escaped = html.escape(text)
        if kind == "rejected":
            if show_rejected:
                spans.append(f'<span class="pass-rejected" style="color:#c00;text-decoration:line-through">{escaped}</span>')
        else:
            spans.append(f'<span class="pass-{kind}" style="{_CSS[kind]}">{escaped}</span>')
    legend = " ".join(
        f'<span style="{_CSS[k]};padding:0 4px">{k}</span>' for k in (ACCEPTED, CORRECTED, BONUS)
    ) + ' <span style="color:#c00;text-decoration:line-through">rejected</span> plain = exact sample from the target'
    return (
        '<div class="pass-highlight"><pre style="white-space:pre-wrap">' + "".join(spans) + "</pre>"
        f'<div style="font-size:small">{legend}</div></div>'
    )


def summary_line(output: GenerationOutput, name: str = "", seconds: float | None = None) -> str:
    """'name: N tokens, C model calls (T tokens/call)[, S tokens/s], acceptance per position'.

    Tokens per second only when the caller timed the run (``seconds``): the core holds no clock.
    """
    s = output.stats
    line = f"{name + ': ' if name else ''}{s.new_tokens} tokens, {s.model_calls} model calls ({s.tokens_per_call:.2f} tokens/call)"
    if seconds is not None:
        line += f", {s.new_tokens / seconds:.1f} tokens/s" if seconds > 0 else ""
    if s.draft_model_calls:
        line += f", {s.draft_model_calls} draft-model calls"
    if s.drafted:
        line += ", acceptance per position " + " ".join(f"{a:.2f}" for a in s.acceptance_rates)
    return line
