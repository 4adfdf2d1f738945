"""The commands beside training: `gan-lab sample`, `eval`, `fid` and `report`.

  gan-lab sample models:/anime@champion --num 64 --out samples/   PNGs and a grid, no data needed
  gan-lab eval outputs/2026-11-23/18-00-00/checkpoints/best.pt     metrics against the run's data
  gan-lab eval runs:/<MLflow run id> --num 10000
  gan-lab fid real_images/ generated.zip                           FID, KID, P/R, rates of A vs B
  gan-lab report anime_scenario1                                   a sweep's table, from MLflow

A generator source is a checkpoint file, an MLflow run (runs:/<id>) or a registered model
(models:/<name>@<alias> or models:/<name>/<version>); of a run, its best checkpoint is taken.
torch, MLflow and the Inception network load only once the arguments are read, so --help is fast.
"""

from __future__ import annotations

import argparse
import logging

from gan_lab.cli import evaluate, fid, report, sample
from gan_lab.cli.arguments import Help

COMMANDS = ("sample", "eval", "fid", "report")


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="gan-lab", description=__doc__, formatter_class=Help)
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (sample, evaluate, fid, report):  # in COMMANDS' order, as --help lists them
        command.add_to(commands)
    return main


def run_command(argv: list[str]):
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parser().parse_args(argv)
    return args.handler(args)
