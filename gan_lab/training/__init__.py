"""Training internals: a run assembled from its config (run.py), its parts, the loop, the losses,
augmentation, checkpoints and signals."""
