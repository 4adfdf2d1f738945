"""gan_lab: experiment sweeps and tracking for DCGANs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gan-lab")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
