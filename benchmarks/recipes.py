"""recipe=seed against recipe=modern: one seed experiment trained both ways for the same number of
images seen, each scored on real images it never trained on.

The images of a ZIP file (or folder) are split once, at random with a fixed seed, into a
training part and a disjoint held-out part (`--holdout` images). Each recipe trains the
experiment's model on the training part from the same seed (the modern recipe changes the
discriminator's normalisation, nothing else of the architecture), then `gan-lab eval` scores its
generator (the moving average where the recipe keeps one) against the held-out images: FID, KID,
and the good / decent / poor rates with their counts. It prints a table of them, each FID's
change against the seed recipe's, and the wall time of each training, and leaves each recipe's
8x8 sample grid in `--out`. With `--score-raw`, a recipe that keeps a moving average is also
scored with its raw generator (row "<recipe> raw G"): whether the average helps at this budget.

    python benchmarks/recipes.py --data ../shared/data/cifar10-catdog-32.zip --classes dog \\
        --experiment cifar_dog --images 128000 --holdout 1000 --out recipes/cifar_dog

`--recipes` takes any recipes, a combination of components written as Hydra's list of a group's
options among them: `--recipes seed ema "[ema,augment]" modern` is an ablation on real data.
"""

from __future__ import annotations

import argparse
import logging
import random
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

from gan_lab.cli.evaluate import evaluate
from gan_lab.config.compose import compose
from gan_lab.training import checkpoint
from gan_lab.training.run import run

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def split(source: Path, classes: list[str], holdout: int, root: Path) -> tuple[Path, Path]:
    """The source's images (of `classes`' folders, if given) into root/train and root/holdout,
    each keeping the image's folder as its class folder."""
    with zipfile.ZipFile(source) as archive:
        names = sorted(
            n
            for n in archive.namelist()
            if n.lower().endswith(IMAGE_SUFFIXES)
            and (not classes or Path(n).parent.name in classes)
        )
        if len(names) <= holdout:
            raise SystemExit(f"{source} has {len(names)} images: fewer than --holdout {holdout}")
        random.Random(0).shuffle(names)
        for part, members in (("holdout", names[:holdout]), ("train", names[holdout:])):
            for name in members:
                target = root / part / Path(name).parent.name / Path(name).name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(name))
    print(f"{len(names) - holdout} training images, {holdout} held out, from {source}")
    return root / "train", root / "holdout"


def train(args, recipe: str, data: Path, folder: Path) -> tuple[Path, float, int]:
    config = compose(f"experiment={args.experiment}", f"recipe={recipe}", *args.overrides)
    steps = args.images // config.train.batch_size
    overrides = [
        f"experiment={args.experiment}",
        f"recipe={recipe}",
        f"data.path={data}",
        f"train.max_steps={steps}",
        "train.epochs=1000000",  # max_steps decides
        f"train.seed={args.seed}",
        "train.keep_checkpoints=false",
        "train.progress=false",
        "tracking=none",
        "metrics=none",
        *([f"data.classes=[{','.join(args.classes)}]"] if args.classes else []),
        *args.overrides,
    ]
    start = time.perf_counter()
    result = run(compose(*overrides), folder)
    if result.status != "FINISHED":
        raise SystemExit(f"recipe={recipe}: {result.describe()}")
    return folder / "checkpoints" / "last.pt", time.perf_counter() - start, result.step


def score(args, checkpoint: Path, holdout: Path, out: Path) -> dict[str, float]:
    evaluation = argparse.Namespace(
        target=str(checkpoint),
        num=args.holdout,
        images=64,
        out=str(out),
        data_path=str(holdout),
        tracking_uri=None,
        batch_size=None,
        device="auto",
        weights=None,
        precision="auto",  # gan-lab eval's default
    )
    return evaluate(evaluation)


def without_average(last: Path) -> Path | None:
    """A copy of the checkpoint `last` less its moving average, so that `gan-lab eval` scores the
    raw generator; None where the run kept no average."""
    state = checkpoint.load(last)
    if state.pop(checkpoint.EMA, None) is None:
        return None
    return checkpoint.save(last.parent, state, name="raw.pt")


def rate(metrics: dict[str, float], name: str, count: int) -> str:
    share = metrics[f"quality_{name}"]
    return f"{round(share * count)}/{count} ({share:.1%})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True, help="a ZIP file of images")
    parser.add_argument("--classes", nargs="*", default=[], help="class folders to keep")
    parser.add_argument("--experiment", required=True, help="a seed experiment (conf/experiment)")
    parser.add_argument("--images", type=int, required=True, help="training images seen")
    parser.add_argument("--holdout", type=int, default=1000, help="held-out real images")
    parser.add_argument("--recipes", nargs="+", default=["seed", "modern"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--score-raw", action="store_true", help="also score the raw G of recipes with an average"
    )
    parser.add_argument("--out", default="outputs/recipes", help="grids, metrics, checkpoints")
    parser.add_argument("overrides", nargs="*", help="more overrides for both recipes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    out = Path(args.out)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        data, holdout = split(Path(args.data), args.classes, args.holdout, Path(tmp) / "data")
        for recipe in args.recipes:
            last, seconds, steps = train(args, recipe, data, Path(tmp) / recipe)
            metrics = score(args, last, holdout, out / recipe)
            shutil.copy(last, out / recipe / "last.pt")
            rows[recipe] = (metrics, seconds, steps)
            raw = without_average(last) if args.score_raw else None
            if raw:  # the same training: its time is the row above's
                raw_metrics = score(args, raw, holdout, out / f"{recipe}-raw")
                rows[f"{recipe} raw G"] = (raw_metrics, None, steps)
            print(f"recipe={recipe}: {steps} steps in {seconds:.0f} s", flush=True)
    count = args.holdout
    print(
        f"\n{args.experiment} on {args.data} {' '.join(args.classes)}: {args.images} images seen; "
        f"scored on {count} generated against {count} held-out real images"
    )
    width = max(8, *(len(recipe) + 2 for recipe in rows))
    print(
        f"{'recipe':<{width}}{'steps':>7}{'train s':>9}{'FID':>9}{'vs seed':>9}{'KID':>9}"
        "  good / decent / poor"
    )
    seed_fid = rows["seed"][0]["fid"] if "seed" in rows else None
    for recipe, (m, seconds, steps) in rows.items():
        rates = " / ".join(rate(m, name, count) for name in ("good", "decent", "poor"))
        # the target is a FID at least 40% lower than the seed recipe's
        change = f"{m['fid'] / seed_fid - 1:+.1%}" if seed_fid else "-"
        took = "-" if seconds is None else f"{seconds:.0f}"
        print(
            f"{recipe:<{width}}{steps:>7}{took:>9}{m['fid']:>9.2f}{change:>9}"
            f"{m['kid']:>9.4f}  {rates}"
        )


if __name__ == "__main__":
    main()
