"""Experiment machinery built on the core: the benchmark harness, HumanEval (Table 2),
the latency model t(n), acceptance evaluation, figures, the machine check (``doctor``)
and opt-in larger models.

Nothing in the algorithm core imports from here; the CLI (``python -m pass_ref``) and
the scripts in ``tools/`` do.
"""
