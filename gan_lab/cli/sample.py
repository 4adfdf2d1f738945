"""`gan-lab sample`: PNG images and a grid from a generator, no data needed; --interpolate:
latent walks, one per grid row."""

from __future__ import annotations

import argparse
from pathlib import Path

from gan_lab.cli.arguments import SOURCE, Commands, add_command, add_tracking_option
from gan_lab.cli.common import device, reach_store, save_images


def sample(args: argparse.Namespace) -> Path:
    """PNG images and a grid from a generator; --interpolate: latent walks, one per grid row."""
    from gan_lab.trained import interpolate, load_generator
    from gan_lab.trained import sample as images_of

    reach_store(args.source, args.tracking_uri)
    generator = load_generator(args.source, args.tracking_uri, device(args.device))
    out = Path(args.out)
    if args.interpolate:
        images = interpolate(generator, args.num, args.interpolate, args.seed)
        save_images(images, out, nrow=args.interpolate)
        what = f"{args.num} latent walks of {args.interpolate} steps"
    else:
        save_images(images_of(generator, args.num, args.seed), out)
        what = f"{args.num} images"
    print(f"{what} and grid.png in {out}")
    return out


def add_to(commands: Commands) -> None:
    command = add_command(commands, "sample", "PNG images and a grid from a generator", sample)
    command.add_argument("source", help=SOURCE)
    command.add_argument("--num", type=int, default=64, help="images (with --interpolate: walks)")
    command.add_argument("--out", default="samples", help="output folder")
    command.add_argument("--seed", type=int, default=0, help="the latent vectors' seed")
    command.add_argument(
        "--interpolate", type=int, metavar="STEPS", help="latent walks of STEPS images instead"
    )
    command.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    add_tracking_option(command)
