"""Step through PaSS iterations one at a time: every number Algorithm 1 touches, kept for display.

``record_iterations`` runs the paper's two-call loop on one prompt, with the same pieces and
the same random draws as ``pass_generate`` (tested token for token), and keeps, per iteration:
the drafting call's rows (q for x_{n+1}, p_LA,j for each draft), the validation call's rows
q_1..q_{k+1}, each uniform r_j against min(1, q_j(x̃_j) / p_j(x̃_j)), the accepted count a,
the distribution the next token came from (the residual after a rejection, or q_{k+1} for the
bonus) and the KV-cache length before, during and after the iteration.

``Stepper`` shows them: a text summary per iteration (``describe``), a figure with q and
p_LA as top-k bars (``figure``), and an ipywidgets panel with previous / next buttons and a
slider (``widget``). ``step`` moves and describes, so a notebook test can run a scripted
sequence of steps without a live front end.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..cache import CachedModel, ExtraInputs
from ..sampling import SamplingConfig, logits_to_probs, sample
from ..verify import acceptance_probs, residual_distribution, verify_drafts


@dataclass
class IterationView:
    """One PaSS iteration, everything kept. Positions are 1-based, as in the paper.

    ``n`` is the prefix length before the iteration, so ``exact`` is x_{n+1} and draft j sits
    at position n + 1 + j. Shapes: ``p`` (k, V), ``q`` (k + 1, V), ``r`` and ``ratio`` (k,).
    """

    index: int
    n: int
    exact: int
    q_exact: torch.Tensor  # (V,): the drafting call's last real row, x_{n+1} is sampled from it
    drafts: list[int]
    p: torch.Tensor  # (k, V): p_LA,1..p_LA,k
    q: torch.Tensor  # (k + 1, V): the validation call's rows
    r: torch.Tensor  # (k,): the uniforms, in the order verify_drafts draws them
    ratio: torch.Tensor  # (k,): min(1, q_j(x̃_j) / p_j(x̃_j))
    accepted: int  # a, 0..k
    next_token: int
    next_probs: torch.Tensor | None  # (V,): residual (a < k) or q_{k+1} (a = k); None when no validation ran
    cache_before: int  # KV length when the iteration starts: n - 1 (all but the last token), 0 at the start
    cache_after_drafting: int
    cache_after_validation: int
    cache_after: int

    @property
    def k(self) -> int:
        return len(self.drafts)

    @property
    def outcome(self) -> str:
        """"all accepted + bonus", "a of k accepted + residual", or "exact only"."""
        if self.next_probs is None:
            return "exact only"
        if self.accepted == self.k:
            return "all accepted + bonus"
        return f"{self.accepted} of {self.k} accepted + residual"

    @property
    def tokens(self) -> list[int]:
        """What the iteration committed: x_{n+1}, the accepted drafts, the next token."""
        if self.next_probs is None:
            return [self.exact]
        return [self.exact] + self.drafts[: self.accepted] + [self.next_token]


def record_iterations(model, lookahead, ids, *, max_new_tokens: int, sampling: SamplingConfig, seed: int = 0,
                      num_lookahead: int | None = None) -> list[IterationView]:
    """Run two-call PaSS like ``pass_generate(..., seed=seed)`` and keep every iteration's numbers.

    Same calls, same random draws in the same order (one uniform per row of the drafting call,
    then verification's), so the tokens equal ``pass_generate``'s. Float32 or float64 model.
    """
    L = lookahead.num_lookahead if num_lookahead is None else num_lookahead
    ids = [int(t) for t in (ids.flatten().tolist() if isinstance(ids, torch.Tensor) else ids)]
    target, generator = CachedModel(model), torch.Generator().manual_seed(seed)
    sequence, views = list(ids), []
    with torch.inference_mode():
        while len(sequence) - len(ids) < max_new_tokens:
            budget = max_new_tokens - (len(sequence) - len(ids))
            k = max(0, min(L, budget - 2))
            n, before = len(sequence), target.length
            vectors = ExtraInputs(lookahead.drafting_inputs(model, k), layer_delta=lookahead.layer_delta(torch.arange(k)))
            probs = logits_to_probs(target.forward(sequence[target.length:], vectors, keep=1), sampling)  # (k + 1, V)
            tokens = sample(probs, generator)
            exact, drafts, p = int(tokens[0]), tokens[1:], probs[1:]
            after_drafting = target.length
            if budget == 1:
                views.append(IterationView(len(views), n, exact, probs[0], [], p, probs[:0], torch.zeros(0), torch.zeros(0),
                                           0, exact, None, before, after_drafting, after_drafting, after_drafting))
                sequence.append(exact)
                break
            q = logits_to_probs(target.forward([exact] + drafts.tolist(), keep=k + 1), sampling)  # (k + 1, V)
            after_validation = target.length
            r = torch.rand(k, generator=torch.Generator().set_state(generator.get_state()), dtype=q.dtype)  # peek
            a, next_token = verify_drafts(q, p, drafts, generator)
            target.rollback(n + 1 + a)
            next_probs = residual_distribution(q[a], p[a]) if a < k else q[k]
            views.append(IterationView(len(views), n, exact, probs[0], drafts.tolist(), p, q, r,
                                       acceptance_probs(q[:k], p, drafts), a, int(next_token), next_probs,
                                       before, after_drafting, after_validation, target.length))
            sequence += views[-1].tokens
    return views


class Stepper:
    """Browse ``record_iterations``' output: text, a figure, or an ipywidgets panel."""

    def __init__(self, views: list[IterationView], tokenizer, *, top_k: int = 5) -> None:
        if not views:
            raise ValueError("nothing to step through: record at least one iteration")
        self.views, self.tokenizer, self.top_k, self.position = views, tokenizer, top_k, 0

    def _tok(self, token: int) -> str:
        return repr(self.tokenizer.decode([int(token)]))

    def describe(self, index: int | None = None) -> str:
        """The iteration as text: drafting call, each draft's test, the next token, the cache."""
        v = self.views[self.position if index is None else index]
        lines = [f"iteration {v.index + 1}: prefix x_1..x_{v.n}; x_{v.n + 1} = {self._tok(v.exact)} "
                 f"(exact, q = {v.q_exact[v.exact]:.3f})"]
        for j, d in enumerate(v.drafts):
            verdict = "accept" if j < v.accepted else ("REJECT" if j == v.accepted else "not checked")
            lines.append(f"  x~_{j + 1} = {self._tok(d):<12} p_LA = {v.p[j, d]:.3f}  q = {v.q[j, d]:.3f}  "
                         f"min(1, q/p) = {v.ratio[j]:.3f}  r = {v.r[j]:.3f}  {verdict}")
        if v.next_probs is not None:
            source = "bonus, from q_{k+1}" if v.accepted == v.k else f"residual norm(max(0, q_{v.accepted + 1} - p_{v.accepted + 1}))"
            lines.append(f"  next token {self._tok(v.next_token)} ({source}, probability {v.next_probs[v.next_token]:.3f})")
        lines.append(f"  KV cache: {v.cache_before} -> {v.cache_after_drafting} after drafting (look-ahead KV cropped) -> "
                     f"{v.cache_after_validation} after validation -> {v.cache_after} kept "
                     f"({v.cache_after_validation - v.cache_after} cropped); {v.outcome}")
        return "\n".join(lines)

    def step(self, delta: int = 1) -> str:
        """Move by ``delta`` iterations (clamped) and describe the new one."""
        self.position = min(max(self.position + delta, 0), len(self.views) - 1)
        return self.describe()

    def figure(self, index: int | None = None):
        """q and p_LA as top-k bars for each draft, then the next token's distribution."""
        import matplotlib.pyplot as plt

        v = self.views[self.position if index is None else index]
        panels = v.k + (v.next_probs is not None)
        fig, axes = plt.subplots(1, max(panels, 1), figsize=(2.6 * max(panels, 1), 2.4), squeeze=False)
        for j in range(v.k):
            ax = axes[0, j]
            top = torch.unique(torch.cat([v.p[j].topk(self.top_k).indices, v.q[j].topk(self.top_k).indices]))
            top = top[(v.q[j, top] + v.p[j, top]).argsort(descending=True)][: self.top_k + 1]
            x = list(range(len(top)))
            ax.bar([i - 0.2 for i in x], v.q[j, top].tolist(), 0.4, label="q", color="#264653")
            ax.bar([i + 0.2 for i in x], v.p[j, top].tolist(), 0.4, label="p_LA", color="#e9c46a")
            ax.set_xticks(x, [self.tokenizer.decode([int(t)]) for t in top], rotation=60, fontsize=7)
            mark = "accept" if j < v.accepted else ("reject" if j == v.accepted else "not checked")
            ax.set_title(f"x~_{j + 1}: r {v.r[j]:.2f} vs {v.ratio[j]:.2f}\n{mark}", fontsize=8)
            if v.drafts[j] in top.tolist():
                ax.axvline(top.tolist().index(v.drafts[j]), color="#e76f51", lw=1, ls=":")
        if v.next_probs is not None:
            ax = axes[0, -1]
            top = v.next_probs.topk(self.top_k).indices
            x = list(range(len(top)))
            ax.bar(x, v.next_probs[top].tolist(), color="#2a9d8f")
            ax.set_xticks(x, [self.tokenizer.decode([int(t)]) for t in top], rotation=60, fontsize=7)
            ax.set_title("bonus q_{k+1}" if v.accepted == v.k else "residual", fontsize=8)
        axes[0, 0].legend(fontsize=7)
        fig.suptitle(f"iteration {v.index + 1}: {v.outcome}", fontsize=9)
        fig.tight_layout()
        return fig

    def widget(self):
        """An ipywidgets panel: previous / next buttons, a slider, the figure and the text."""
        import ipywidgets as widgets
        import matplotlib.pyplot as plt
        from IPython.display import display

        out = widgets.Output()
        slider = widgets.IntSlider(value=self.position + 1, min=1, max=len(self.views), description="iteration")
        back, forward = widgets.Button(description="◀ previous"), widgets.Button(description="next ▶")

        def show(change=None):
            self.position = slider.value - 1
            with out:
                out.clear_output(wait=True)
                fig = self.figure()
                display(fig)
                plt.close(fig)  # shown once, inside the panel
                print(self.describe())

        slider.observe(show, names="value")
        back.on_click(lambda _: setattr(slider, "value", max(1, slider.value - 1)))
        forward.on_click(lambda _: setattr(slider, "value", min(len(self.views), slider.value + 1)))
        show()
        return widgets.VBox([widgets.HBox([back, forward, slider]), out])
