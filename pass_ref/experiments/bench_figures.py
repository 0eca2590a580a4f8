"""Figures of a benchmark summary (``pass_ref.experiments.bench.summarize`` rows).

- ``plot_vs_lookahead``: seconds per 100 tokens and speed-up against L (paper Table 1, right);
- ``plot_vs_temperature``: speed-up over autoregressive against T for each method (Table 1, left);
- ``plot_acceptance``: acceptance per draft position for the PaSS rows.
Each returns the matplotlib figure; ``save_figures`` writes all that apply as PNG.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from .bench import label


def _rows(rows, method, T=None):
    return [r for r in rows if r["method"] == method and (T is None or r["temperature"] == T)]


def plot_vs_lookahead(rows: Sequence[dict], temperature: float):
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_s) = plt.subplots(1, 2, figsize=(9, 3.4))
    for method, marker in (("pass", "o"), ("pass-unk", "s")):
        rs = sorted(_rows(rows, method, temperature), key=lambda r: r["L"])
        if rs:
            Ls = [r["L"] for r in rs]
            ax_t.plot(Ls, [r["seconds_per_100"] for r in rs], marker=marker, label=label(method))
            ax_s.plot(Ls, [r["speedup_vs_ar"] for r in rs], marker=marker, label=label(method))
            pred = [r.get("predicted_speedup") for r in rs]
            if all(p is not None for p in pred):
                ax_s.plot(Ls, pred, marker=marker, ls="--", alpha=0.6, label=label(method) + " (latency model)")
    for method in ("ar", "hf"):
        for r in _rows(rows, method, temperature):
            ax_t.axhline(r["seconds_per_100"], ls=":", color="grey" if method == "ar" else "tab:red", label=label(method))
    ax_s.axhline(1.0, ls=":", color="grey")
    ax_t.set(xlabel="look-ahead tokens L", ylabel="seconds per 100 tokens (median)", title=f"time, T = {temperature:g}")
    ax_s.set(xlabel="look-ahead tokens L", ylabel="speed-up over our AR", title="speed-up (median of paired ratios)")
    for ax in (ax_t, ax_s):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_vs_temperature(rows: Sequence[dict], L: int):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for method in ("hf", "pass-unk", "pass", "speculative", "prompt-lookup"):
        rs = [r for r in rows if r["method"] == method and (method not in ("pass", "pass-unk") or r["L"] == L)]
        rs.sort(key=lambda r: r["temperature"])
        if rs:
            ax.plot([r["temperature"] for r in rs], [r["speedup_vs_ar"] for r in rs], marker="o", label=label(method))
    ax.axhline(1.0, ls=":", color="grey")
    ax.set(xlabel="temperature T", ylabel="speed-up over our AR", title=f"speed-up vs temperature (PaSS L = {L})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_acceptance(rows: Sequence[dict]):
    import matplotlib.pyplot as plt

    rs = [r for r in rows if r["method"] in ("pass", "pass-unk", "speculative") and r["acceptance"]]
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for r in rs:
        acc = [a if not math.isnan(a) else 0.0 for a in r["acceptance"]]
        ax.plot(range(1, len(acc) + 1), acc, marker="o", label=f"{label(r['method'])} L={r['L']} T={r['temperature']:g}")
    ax.set(xlabel="draft position i", ylabel="acceptance (fraction of iterations)", title="accepted drafts per position", ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


def save_figures(rows: Sequence[dict], out_dir: str | Path, *, default_L: int = 4) -> list[Path]:
    """Write every figure the rows support; return the paths."""
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    temps = sorted({r["temperature"] for r in rows})
    for T in temps:
        if len({r["L"] for r in _rows(rows, "pass", T)}) > 1:
            fig = plot_vs_lookahead(rows, T)
            paths.append(out / f"speed_vs_L_T{T:g}.png")
            fig.savefig(paths[-1], dpi=110)
            plt.close(fig)
    if len(temps) > 1:
        fig = plot_vs_temperature(rows, default_L)
        paths.append(out / "speedup_vs_temperature.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    if any(r["acceptance"] for r in rows):
        fig = plot_acceptance(rows)
        paths.append(out / "acceptance_per_position.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths
