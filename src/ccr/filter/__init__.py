"""Which machine-translated pairs to trust: scores, DCOT confidences, selection, planted noise.

- ``ccr score`` (``score.py``): per MT row, the cross-lingual view ``xl_sim`` (English caption ↔ MT
  caption in a multilingual sentence space), the cross-modal view ``xm_sim`` (the media's CLIP
  features ↔ the MT caption under a multilingual CLIP text encoder) and the DCOT confidence
  ``dcot_conf`` (``dcot_conf.py``: optimal transport over random groups of pairs in both views);
  side table ``captions.score``.
- ``ccr select`` (``select.py``): policies that turn scores into ``keep`` and ``weight``; side
  table ``captions.select``, read by the trainer.
- ``ccr noise inject`` / ``ccr noise eval`` (``noise.py``, ``noise_eval.py``): a copy of a corpus
  with known noise in its MT captions, and how well each score finds it (``plots.py`` draws).
"""
