"""Optuna search over gan_lab's config space: the search-space parser (space.py), the study both
sides reach (study.py) and the job's reporting to its trial (trial.py). The sweeper that runs a
search's trials as a sweep's jobs is gan_lab/sweep/optuna_sweeper.py."""
