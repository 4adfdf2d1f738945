"""`gan-lab report`: a sweep's scenario table from MLflow (gan_lab/report does the work)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gan_lab.cli.arguments import Commands, add_command, add_tracking_option
from gan_lab.cli.common import reach_store


def report(args: argparse.Namespace) -> Path:
    from gan_lab.report import report as write_report

    reach_store(None, args.tracking_uri)
    return write_report(args.target, args.out, args.tracking_uri, crown=args.crown)


def add_to(commands: Commands) -> None:
    command = add_command(commands, "report", "the scenario table of a sweep, from MLflow", report)
    command.add_argument(
        "target",
        help="an MLflow experiment (its latest sweep), or a sweep's parent run id (or the first "
        "8 characters of it, as the report's title shows)",
    )
    command.add_argument("--out", help="output folder (default: reports/<target>)")
    command.add_argument(
        "--crown",
        action="store_true",
        help="also set the registry's alias champion on the best run's model version (without "
        "it the report writes nothing to the model registry)",
    )
    add_tracking_option(command)
