"""`gan-lab sample`, `eval`, `fid` and `report`: main.py reads the arguments and dispatches to
the command's module (sample.py, evaluate.py, fid.py, report.py)."""

from gan_lab.cli.main import COMMANDS, parser, run_command

__all__ = ["COMMANDS", "parser", "run_command"]
