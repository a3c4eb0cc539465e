"""Learning the toy-domain models that ``--models toy`` ships (``ccr/testing/toy_models``).

Not run by the suite or at run time: ``scripts/learn_toy_models.py`` rebuilds the shipped
weights, bit for bit on the same machine, thread count and torch version.
"""
