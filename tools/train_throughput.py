"""Training throughput: the paper's one-insertion-per-pass recipe vs masked multi-block passes.

    .venv/bin/python tools/train_throughput.py

Side by side in one process (alternating, 3 repetitions, medians), default model in
bfloat16, 8 sequences of 128 tokens from the standard library's inspect.py, L = 4.
Counts supervised look-ahead targets (B * K * L) per second of forward + backward.
"""

import inspect
import statistics
import time
from pathlib import Path

import torch

import pass_ref
from pass_ref.training.train import lookahead_loss, sample_insertions

T, B, L, REPEATS = 128, 8, 4, 3
METHODS = (("naive K=1", 1, "naive"), ("masked K=16", 16, "masked"), ("masked K=32", 32, "masked"))  # K=16: the shipped recipe


def main() -> None:
    model, tokenizer = pass_ref.load_model(dtype=torch.bfloat16)
    lookahead = pass_ref.LookaheadEmbeddings.from_token(model, L)
    ids = tokenizer(Path(inspect.getfile(inspect)).read_text(), return_tensors="pt").input_ids[0]
    sequences = ids[: (len(ids) // T) * T].view(-1, T)  # (N, T)
    generator = torch.Generator().manual_seed(0)
    rates = {name: [] for name, _, _ in METHODS}
    for _ in range(REPEATS):
        tokens = sequences[torch.randint(0, len(sequences), (B,), generator=generator)]  # (B, T)
        for name, K, method in METHODS:
            insertions = sample_insertions(B, T, L, K, generator)  # (B, K)
            start = time.perf_counter()
            loss, _ = lookahead_loss(model, lookahead, tokens, insertions, method=method)
            loss.backward()
            lookahead.weight.grad = None
            rates[name].append(B * K * L / (time.perf_counter() - start))
    for name, values in rates.items():
        print(f"{name}: median {statistics.median(values):.0f} supervised targets/s  {[round(v) for v in values]}")
    naive = statistics.median(rates["naive K=1"])
    for name in rates:
        if name != "naive K=1":
            print(f"{name} / naive: {statistics.median(rates[name]) / naive:.1f}x")


if __name__ == "__main__":
    main()
