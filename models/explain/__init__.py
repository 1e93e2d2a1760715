"""Is attention an explanation? Tools to test it on the loaded models.

- ``ablation``: switch attention heads off per call (or, for the RNN, make its attention
  uniform) and see the probabilities move; Michel et al. (2019) head importance.
- ``attribution``: attention next to gradient and occlusion attributions for one text.
- ``faithfulness``: comprehensiveness and sufficiency (DeYoung et al. 2020) of each method.
- ``runner``: the compiled, batched model calls they share.
"""
