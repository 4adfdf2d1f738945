"""Image-quality metrics: the Inception features (inception.py), the scores (scores.py) and the
evaluator that scores generators against cached reference features (evaluator.py)."""

from gan_lab.metrics.evaluator import Evaluator, Reference, to_uint8

__all__ = ["Evaluator", "Reference", "to_uint8"]
