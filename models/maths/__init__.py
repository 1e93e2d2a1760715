"""Attention maths as pure functions on numpy arrays: no model, no UI, each citing its paper.

- ``tokens``: word pieces merged into words (Clark et al. 2019), special tokens hidden.
- ``rollout``: attention rollout across layers (Abnar & Zuidema 2020).
- ``flow``: attention flow, maximum flow through the layered attention graph (Abnar & Zuidema 2020).
- ``head_stats``: per-head entropy, distance, special/previous/next/self shares, confidence (Clark et al. 2019).
- ``norms``: attention norms (Kobayashi et al. 2020) and ALTI (Ferrando et al. 2022) of a BERT layer.
"""
