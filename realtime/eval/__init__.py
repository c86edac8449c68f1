"""Measuring models: identity verification (``identity``: pairs, ROC, AUC) and swap quality
(``swap``: a generator on held-out people; ``swap_measures``: the measures and the dlib judge).
Never imported by the live path."""
