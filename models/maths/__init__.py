"""Attention maths as pure functions on numpy arrays: no model, no UI, each citing its paper.

- ``tokens``: word pieces merged into words (Clark et al. 2019), special tokens hidden.
- ``rollout``: attention rollout across layers (Abnar & Zuidema 2020).
"""
