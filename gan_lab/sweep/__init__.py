"""A sweep of runs: its parent run, the hand-off to its jobs, and what clusters need of it."""
