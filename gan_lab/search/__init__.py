"""Optuna search over gan_lab's config space: the sweeper (sweeper.py), the search-space parser
(space.py) and the job's reporting to its trial (trial.py)."""
