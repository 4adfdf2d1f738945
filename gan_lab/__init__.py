"""gan_lab: experiment sweeps and tracking for DCGANs.

From Python (a notebook, a script), the same runs as the command line:

    from gan_lab import compose, train, load_generator, sample
    config = compose("experiment=anime_s2", "recipe=modern", "data.path=~/anime", "train.epochs=5")
    result = train(config, "outputs/notebook")  # an Outcome: status, metrics, step reached
    generator = load_generator("outputs/notebook")  # its best checkpoint; or runs:/, models:/
    images = sample(generator, 16)              # (16, C, H, W) floats in [0, 1]
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gan-lab")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

# Where each name lives; imported when first used, so that `import gan_lab` (and the command
# line's help) loads neither torch nor MLflow.
_API = {
    "compose": "gan_lab.config.compose",
    "train": "gan_lab.training.run",
    "load_generator": "gan_lab.trained",
    "sample": "gan_lab.trained",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'gan_lab' has no attribute {name!r}")
