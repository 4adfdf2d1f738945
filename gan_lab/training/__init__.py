"""Training internals: a run assembled from its config (run.py), its parts, the evaluation
policy, the loop, the losses, augmentation, checkpoints, what a run records and signals."""
