"""Data sets on small folders, ZIP files and CIFAR-10 batch files that the tests write."""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import pickle
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gan_lab.data.cache
from gan_lab.config.compose import compose
from gan_lab.data import cache_dir, image_shape, load_images
from gan_lab.data.batches import BatchSource
from gan_lab.errors import DataError
from gan_lab.models.dcgan import Generator

COLOURS = {"cat": (200, 30, 30), "dog": (30, 200, 30), "wild": (30, 30, 200)}


def _save(path: Path, image: Image.Image) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def _animal_folder(root: Path, per_class: int = 4) -> Path:
    """AFHQ-like train/{cat,dog,wild}: PNG and JPEG files, one corrupt file, one text file."""
    for label, colour in COLOURS.items():
        for index in range(per_class):
            suffix = "png" if index % 2 else "jpg"
            shade = tuple(min(255, c + 10 * index) for c in colour)
            _save(root / label / f"{index:03d}.{suffix}", Image.new("RGB", (40, 40), shade))
    (root / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    (root / "dog" / "notes.txt").write_text("not an image")
    return root


def _zip(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, path.relative_to(folder).as_posix())
    return target


def _data(tmp_path, *overrides: str):
    return compose(
        "data=folder", f"data.cache_dir={tmp_path / 'cache'}", "data.workers=0", *overrides
    ).data


def _load(data, size: int | None = None, channels: int = 3) -> torch.Tensor:
    """The images as a run of the default model (dcgan32: 32x32) would load them."""
    size = size or data.size or 32
    return load_images(data, (channels, size, size)).images


def test_a_folder_with_class_folders(tmp_path):
    root = _animal_folder(tmp_path / "afhq")
    images = _load(_data(tmp_path, f"data.path={root}", "data.size=16", "data.classes=[cat]"))
    assert images.shape == (4, 3, 16, 16) and images.dtype == torch.uint8
    red = images[:, 0].float().mean()
    assert red > 150 and images[:, 1].float().mean() < 100  # the cat images are red


def test_a_zip_reads_like_its_folder(tmp_path):
    root = _animal_folder(tmp_path / "afhq")
    archive = _zip(root, tmp_path / "afhq.zip")
    from_folder = _load(_data(tmp_path, f"data.path={root}", "data.size=16"))
    from_zip = _load(_data(tmp_path, f"data.path={archive}", "data.size=16"))
    assert from_folder.shape == (12, 3, 16, 16)  # 12 good images; corrupt and text files left out
    assert torch.equal(from_folder, from_zip)


def test_corrupt_files_are_skipped_with_a_count(tmp_path, caplog):
    root = _animal_folder(tmp_path / "afhq")
    with caplog.at_level(logging.WARNING):
        images = _load(_data(tmp_path, f"data.path={root}", "data.size=8", "data.classes=[dog]"))
    assert images.shape[0] == 4
    assert "skipped 1 of 5 image files" in caplog.text and "broken.jpg" in caplog.text


def test_a_folder_of_only_corrupt_files_stops_the_run(tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    for index in range(3):
        (root / f"{index}.png").write_bytes(b"\x89PNG but not really")
    with pytest.raises(DataError, match="none of the 3 image files"):
        _load(_data(tmp_path, f"data.path={root}", "data.size=8"))


def test_an_empty_folder_is_reported(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("no images here")
    with pytest.raises(DataError, match="no image files in"):
        _load(_data(tmp_path, f"data.path={tmp_path / 'empty'}", "data.size=8"))


def test_an_unknown_class_lists_the_ones_found(tmp_path):
    root = _animal_folder(tmp_path / "afhq")
    with pytest.raises(DataError, match="no class folder horse .* found: cat, dog, wild"):
        _load(_data(tmp_path, f"data.path={root}", "data.size=8", "data.classes=[horse]"))


@pytest.mark.parametrize(
    ("preset", "hint"),
    [
        ("anime_faces", "kaggle.com/datasets/splcher/animefacedataset"),
        ("animal_faces", "kaggle.com/datasets/andrewmvd/animal-faces"),
        ("cifar10", "data.download=true"),
        ("celeba", "data.download=true"),
    ],
)
def test_a_missing_data_set_names_the_path_and_where_to_get_it(tmp_path, preset, hint):
    data = compose(f"data={preset}", f"data.path={tmp_path / 'nowhere'}").data
    with pytest.raises(DataError) as raised:
        _load(data)
    assert str(tmp_path / "nowhere") in str(raised.value) and hint in str(raised.value)


def test_grayscale(tmp_path):
    _save(tmp_path / "g" / "a.png", Image.new("RGB", (20, 20), (100, 100, 100)))
    _save(tmp_path / "g" / "b.png", Image.new("L", (20, 20), 180))
    images = _load(_data(tmp_path, f"data.path={tmp_path / 'g'}", "data.size=10"), channels=1)
    assert images.shape == (2, 1, 10, 10)
    assert sorted(images.float().mean((1, 2, 3)).round().tolist()) == [100.0, 180.0]


def _wide(tmp_path) -> Path:
    """A 40x20 image: left half white, right half grey."""
    image = np.zeros((20, 40, 3), dtype=np.uint8)
    image[:, :20] = 255
    image[:, 20:] = 128
    _save(tmp_path / "w" / "wide.png", Image.fromarray(image))
    return tmp_path / "w"


def test_resize_mode_pad_keeps_the_whole_image_on_black(tmp_path):
    image = _load(
        _data(tmp_path, f"data.path={_wide(tmp_path)}", "data.size=8", "data.resize_mode=pad")
    )[0]
    assert image[:, 0].max() == 0 and image[:, -1].max() == 0  # black bars top and bottom
    assert image[0, 4, 0] == 255 and image[0, 4, -1] == 128  # both halves kept


def test_resize_mode_center_crop_cuts_the_sides(tmp_path):
    folder = _wide(tmp_path)
    image = _load(
        _data(tmp_path, f"data.path={folder}", "data.size=8", "data.resize_mode=center_crop")
    )[0]
    assert image.min() > 0  # no padding
    assert image[0, :, 0].float().mean() > 200 and image[0, :, -1].float().mean() < 160


def test_resize_mode_stretch_keeps_everything_without_bars(tmp_path):
    folder = _wide(tmp_path)
    image = _load(
        _data(tmp_path, f"data.path={folder}", "data.size=8", "data.resize_mode=stretch")
    )[0]
    assert image[0, :, 0].tolist() == [255] * 8 and image[0, :, -1].tolist() == [128] * 8


def test_the_crop_box_comes_before_the_resize(tmp_path):
    folder = _wide(tmp_path)
    box = "data.crop=[20,0,40,20]"  # the grey right half, in PIL's (left, upper, right, lower)
    image = _load(_data(tmp_path, f"data.path={folder}", "data.size=8", box))[0]
    assert image.unique().tolist() == [128]


def test_a_crop_box_outside_the_image_is_a_clear_error(tmp_path):
    folder = _wide(tmp_path)
    with pytest.raises(DataError, match=r"data.crop=\[0, 0, 60, 20\] falls outside a 40x20 image"):
        _load(_data(tmp_path, f"data.path={folder}", "data.size=8", "data.crop=[0,0,60,20]"))


def _numbered(tmp_path, count: int = 10) -> Path:
    for index in range(count):
        _save(tmp_path / "n" / f"{index:02d}.png", Image.new("L", (8, 8), index * 20))
    return tmp_path / "n"


def test_limit_first_and_seeded_random(tmp_path):
    folder = _numbered(tmp_path)

    def values(*overrides: str) -> list[int]:
        data = _data(tmp_path, f"data.path={folder}", "data.size=8", *overrides)
        return (_load(data, channels=1)[:, 0, 0, 0].int() // 20).tolist()

    assert values("data.limit=3") == [0, 1, 2]
    random = values("data.limit=3", "data.limit_mode=random", "data.seed=1")
    assert len(set(random)) == 3 and random != [0, 1, 2]
    assert random == values("data.limit=3", "data.limit_mode=random", "data.seed=1")
    assert random != values("data.limit=3", "data.limit_mode=random", "data.seed=2")


def _no_decoding(*args, **kwargs):
    """decode's stand-in where the cache must be read, not built."""
    raise AssertionError("decoded again instead of reading the cache")


def test_the_cache_is_built_once_and_reused(tmp_path, monkeypatch):
    folder = _numbered(tmp_path)
    data = _data(tmp_path, f"data.path={folder}", "data.size=8")
    first = _load(data, channels=1)
    files = list((cache_dir(data) / "data").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npy"
    monkeypatch.setattr(gan_lab.data.cache, "decode", _no_decoding)
    assert torch.equal(_load(data, channels=1), first)


def test_a_changed_file_or_option_builds_a_new_cache(tmp_path):
    folder = _numbered(tmp_path)
    data = _data(tmp_path, f"data.path={folder}", "data.size=8")
    _load(data, channels=1)
    _load(_data(tmp_path, f"data.path={folder}", "data.size=4"), size=4, channels=1)
    _save(folder / "03.png", Image.new("L", (8, 8), 255))
    os.utime(folder / "03.png", ns=(1, 10**18))
    changed = _load(data, channels=1)
    assert changed[3, 0, 0, 0] == 255
    assert len(list((cache_dir(data) / "data").glob("*.npy"))) == 3


def test_a_copied_zip_keeps_its_cache_and_a_changed_one_builds_anew(tmp_path, monkeypatch):
    folder = _numbered(tmp_path)
    archive = _zip(folder, tmp_path / "images.zip")
    first = _load(_data(tmp_path, f"data.path={archive}", "data.size=8"), channels=1)
    copy = tmp_path / "staged" / "images.zip"
    copy.parent.mkdir()
    shutil.copyfile(archive, copy)  # another path, another modification time, the same images
    os.utime(copy, ns=(1, 10**18))
    decode = gan_lab.data.cache.decode
    monkeypatch.setattr(gan_lab.data.cache, "decode", _no_decoding)
    data = _data(tmp_path, f"data.path={copy}", "data.size=8")
    assert torch.equal(_load(data, channels=1), first)
    monkeypatch.setattr(gan_lab.data.cache, "decode", decode)
    _save(folder / "03.png", Image.new("L", (8, 8), 255))
    _zip(folder, copy)
    assert _load(data, channels=1)[3, 0, 0, 0] == 255


def _build(folder: str, cache: str, queue) -> None:
    data = _data(Path(cache).parent, f"data.path={folder}", "data.size=16")
    queue.put(_load(data, channels=1).sum().item())


def test_two_jobs_building_the_cache_at_once_leave_one_good_file(tmp_path):
    folder = _numbered(tmp_path, count=200)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    jobs = [
        context.Process(target=_build, args=(str(folder), str(tmp_path / "cache"), queue))
        for _ in range(2)
    ]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(timeout=120)
    sums = [queue.get(timeout=10) for _ in jobs]
    assert sums[0] == sums[1]
    entries = list((tmp_path / "cache" / "data").iterdir())
    assert len(entries) == 1 and entries[0].suffix == ".npy"  # no temporary file left behind
    assert np.load(entries[0]).shape == (200, 1, 16, 16)


def _cifar10(root: Path) -> Path:
    """CIFAR-10's python batch files in torchvision's layout, with random pixels."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in files:
        labels = rng.integers(0, 10, 20).tolist()
        pixels = rng.integers(0, 256, (20, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": pixels, "labels": labels}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names}, f)
    return folder


@pytest.fixture
def cifar10_files(tmp_path, monkeypatch):
    """Writes the batch files and registers their checksums, so that torchvision's integrity
    check passes for them as it does for the real files."""
    from torchvision.datasets import CIFAR10

    folder = _cifar10(tmp_path / "cifar")

    def md5(name: str) -> str:
        return hashlib.md5((folder / name).read_bytes()).hexdigest()

    monkeypatch.setattr(
        CIFAR10, "train_list", [[f"data_batch_{i}", md5(f"data_batch_{i}")] for i in range(1, 6)]
    )
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5("test_batch")]])
    monkeypatch.setitem(CIFAR10.meta, "md5", md5("batches.meta"))
    return folder


def test_cifar10_batch_files_by_class(tmp_path, cifar10_files):
    labels = []
    for index in range(1, 6):
        with open(cifar10_files / f"data_batch_{index}", "rb") as f:
            labels += pickle.load(f, encoding="latin1")["labels"]
    data = compose(
        "data=cifar10", f"data.path={tmp_path / 'cifar'}", f"data.cache_dir={tmp_path / 'c'}"
    ).data
    dogs = _load(data)
    assert dogs.shape == (labels.count(5), 3, 32, 32)
    both = compose(
        "data=cifar10",
        f"data.path={tmp_path / 'cifar'}",
        "data.classes=[cat,dog]",
        f"data.cache_dir={tmp_path / 'c'}",
    ).data
    assert _load(both).shape[0] == labels.count(3) + labels.count(5)


def test_cifar10_pixels_are_the_batch_files_pixels(tmp_path, cifar10_files):
    with open(cifar10_files / "data_batch_1", "rb") as f:
        batch = pickle.load(f, encoding="latin1")
    first = np.asarray(batch["data"][0]).reshape(3, 32, 32)
    data = compose(
        "data=cifar10",
        f"data.path={tmp_path / 'cifar'}",
        "data.classes=null",
        f"data.cache_dir={tmp_path / 'c'}",
    ).data
    assert np.array_equal(_load(data)[0].numpy(), first)


def test_an_unknown_cifar10_class_lists_the_classes(tmp_path, cifar10_files):
    data = compose("data=cifar10", f"data.path={tmp_path / 'cifar'}", "data.classes=[dgo]").data
    with pytest.raises(DataError, match="no class dgo; its classes: airplane"):
        _load(data)


def test_downloading_offline_is_a_clear_message(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    data = compose("data=cifar10", f"data.path={tmp_path / 'c10'}", "data.download=true").data
    with pytest.raises(DataError, match="could not download CIFAR-10 .*without internet"):
        _load(data)


def test_celeba_in_torchvisions_layout_with_the_seeds_crop(tmp_path):
    folder = tmp_path / "celeba_root" / "celeba" / "img_align_celeba"
    for index in range(3):
        image = np.full((218, 178, 3), 40, dtype=np.uint8)
        image[55:175, 30:150] = 200 + index  # the seed's crop box holds the face
        _save(folder / f"{index + 1:06d}.jpg", Image.fromarray(image))
    data = compose(
        "data=celeba",
        f"data.path={tmp_path / 'celeba_root'}",
        f"data.cache_dir={tmp_path / 'c'}",
        "data.limit=2",
    ).data
    images = _load(data, 64)  # celeba64's size
    assert images.shape == (2, 3, 64, 64)
    assert images.float().mean() > 190  # only the face box, no background


@pytest.mark.parametrize(
    ("data_preset", "model_preset"),
    [
        ("anime_faces", "anime_s1"),
        ("anime_faces", "anime_s2"),
        ("cat_faces", "cat_faces64"),
        ("animal_faces", "animal_faces28"),
        ("cifar10", "cifar_dcgan32"),
        ("celeba", "celeba64"),
        ("synthetic", "dcgan64"),
    ],
)
def test_every_data_set_fits_its_seed_preset(data_preset, model_preset):
    config = compose(f"data={data_preset}", f"model={model_preset}")
    generator_shape = Generator(config.model).output_shape
    assert image_shape(config.data, generator_shape) == generator_shape


def test_flips_are_drawn_per_epoch_and_repeat_for_a_seed():
    images = torch.arange(8, dtype=torch.uint8).view(8, 1, 1, 1).expand(8, 1, 2, 2).clone()
    images[:, :, :, 1] = 255  # right column white: a flip moves it to the left
    source = BatchSource(images, 8, torch.device("cpu"), (0.0, 1.0), seed=3, flip=True)
    first = next(source.epoch(0))
    flipped = first[:, 0, 0, 0] == 1.0
    assert 0 < flipped.sum() < 8
    assert torch.equal(next(source.epoch(0)), first)
    plain = BatchSource(images, 8, torch.device("cpu"), (0.0, 1.0), seed=3)
    assert (next(plain.epoch(0))[:, 0, 0, 1] == 1.0).all()


def test_training_on_an_image_folder(tmp_path, tiny_config):
    from gan_lab.training.run import run

    root = _animal_folder(tmp_path / "afhq", per_class=40)
    config = tiny_config(
        "data=folder",
        f"data.path={root}",
        "data.size=32",
        f"data.cache_dir={tmp_path / 'c'}",
        "train.epochs=1",
    )
    result = run(config, tmp_path / "run")
    assert result.status == "FINISHED"
    assert (tmp_path / "run" / "samples" / "epoch_0001.png").exists()
    assert np.isfinite(list(result.metrics.values())).all()


def test_images_of_more_than_8_bits_are_scaled_down_not_clipped(tmp_path):
    """A 16-bit PNG and a float TIFF of mid grey decode to mid grey (Pillow's convert() would
    clip them to white and to black); a float image outside [0, 1] is skipped and counted."""
    folder = tmp_path / "deep"
    folder.mkdir()
    Image.fromarray(np.full((20, 20), 32768, dtype=np.uint16)).save(folder / "a.png")
    Image.fromarray(np.full((20, 20), 0.5, dtype=np.float32), "F").save(folder / "b.tiff")
    Image.fromarray(np.full((20, 20), 7.0, dtype=np.float32), "F").save(folder / "c.tiff")
    images = _load(_data(tmp_path, f"data.path={folder}", "data.size=16"))
    assert images.shape == (2, 3, 16, 16)  # c.tiff skipped
    assert ((images.float() - 128).abs() <= 1).all()


def test_a_folder_follows_the_models_size_unless_both_are_set(tmp_path):
    root = _animal_folder(tmp_path / "afhq")
    for model, size in (("dcgan32", 32), ("dcgan64", 64), ("animal_faces28", 28)):
        config = compose("data=folder", f"data.path={root}", f"model={model}")
        generator_shape = Generator(config.model).output_shape
        assert image_shape(config.data, generator_shape) == (3, size, size)
