"""Training throughput: the paper's one-insertion-per-pass recipe vs masked multi-block passes.

    .venv/bin/python tools/train_throughput.py

Side by side in one process (alternating, 3 repetitions, medians), default model in
bfloat16, 8 sequences of 128 tokens from the standard library's inspect.py, L = 4.
Counts supervised look-ahead targets (B * K * L) per second of forward + backward.
"""
import time, torch, statistics
import pass_ref
from pass_ref.train import lookahead_loss, sample_insertions
model, tok = pass_ref.load_model(dtype=torch.bfloat16)
la = pass_ref.LookaheadEmbeddings.from_token(model, 4)
import inspect, pathlib
text = pathlib.Path(inspect.getfile(inspect)).read_text()
ids = tok(text, return_tensors="pt").input_ids[0]
T, B, L = 128, 8, 4
seqs = ids[: (len(ids)//T)*T].view(-1, T)
g = torch.Generator().manual_seed(0)
rates = {"naive K=1": [], "masked K=32": []}
for rep in range(3):
    rows = torch.randint(0, len(seqs), (B,), generator=g); tokens = seqs[rows]
    for name, K, method in (("naive K=1", 1, "naive"), ("masked K=32", 32, "masked")):
        ins = sample_insertions(B, T, L, K, g)
        t = time.perf_counter()
        loss, _ = lookahead_loss(model, la, tokens, ins, method=method); loss.backward(); la.weight.grad = None
        rates[name].append(B * K * L / (time.perf_counter() - t))
for k, v in rates.items(): print(f"{k}: median {statistics.median(v):.0f} supervised targets/s  {[round(x) for x in v]}")
print("ratio", statistics.median(rates["masked K=32"]) / statistics.median(rates["naive K=1"]))
