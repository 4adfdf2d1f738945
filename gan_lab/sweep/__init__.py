"""A sweep of runs: its record and parent run (record.py), the hand-off to its jobs (handoff.py),
how its runs are named and tagged (names.py), how the command line exits (exits.py), Hydra's
callback over the record (callback.py), the Optuna sweeper that runs a search's trials as its
jobs (optuna_sweeper.py), and what clusters need of it (launchers.py)."""
