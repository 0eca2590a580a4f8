"""Course helpers for the notebooks: the theory of speculative sampling (expected tokens
per call, predicted speed-ups), the statistical exactness test and the assignments'
autograders.
"""
