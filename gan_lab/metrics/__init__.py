"""Image-quality metrics: the Inception features (inception.py), the scores (scores.py) and the
evaluator that scores generators against cached reference features (evaluator.py)."""
