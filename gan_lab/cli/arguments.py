"""What the commands' arguments share: the help's form, the options several commands take, and
how a command is added to the parser."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

SOURCE = "a checkpoint file, runs:/<MLflow run id> or models:/<name>@<alias>"

Commands = Any  # argparse's sub-parsers action (argparse._SubParsersAction), private in argparse


class Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's default in its help, and the description as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None:  # no default, or one the help says in words (eval --num)
            return action.help or ""
        return super()._get_help_string(action)


def add_command(
    commands: Commands, name: str, help: str, handler: Callable[[argparse.Namespace], Any]
) -> argparse.ArgumentParser:
    command = commands.add_parser(name, help=help, formatter_class=Help)
    command.set_defaults(handler=handler)
    return command


def add_inception_options(parser: argparse.ArgumentParser) -> None:
    """The options of the commands that run the Inception network (eval, fid)."""
    parser.add_argument(
        "--batch-size", type=int, help="Inception's batch (default: 16 on a CPU, 250 on a GPU)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--weights", help="the Inception weights file (default: as the README)")


def add_tracking_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tracking-uri", help="the MLflow store (default: $MLFLOW_TRACKING_URI, else ./mlflow.db)"
    )
