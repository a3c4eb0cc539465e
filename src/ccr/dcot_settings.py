"""DCOT's transport settings: one set for ``ccr score``'s static prior and ``ccr train --method dcot``.

Both read their confidences off the same relaxed plan (``ccr.ot.dual_view_confidence``), so the
static prior and the online confidence are one quantity computed from different embeddings. The
settings live in this leaf, free of torch, so that stage and method configs default to them
without importing it.
"""

DCOT_EPS = 0.5  # entropic regularisation, in standard deviations of the costs (each view is standardised)
DCOT_RELAX = 1.0  # KL penalty on the plan's marginals (unbalanced OT, POT's reg_m); 0 = balanced
DCOT_ITERS = 50  # Sinkhorn iterations at most: a confidence needs the plan's structure, not its last digit
