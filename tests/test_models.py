"""The generic builder reproduces every seed architecture: layer shapes and the parameter
counts of ../shared/seed-architectures.md (trainable, and Keras' total with BN statistics)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gan_lab.config.compose import compose
from gan_lab.models.dcgan import Discriminator, Generator, same_conv, same_conv_transpose
from gan_lab.models.networks import build_discriminator, build_generator
from gan_lab.models.parameters import count_parameters

# The variants' overrides
S1_RUN_LOGS = ["model.generator.kernel=[4,4,2]", "model.generator.output.kernel=2"]
S1_HEAD = [
    "model.generator.kernel=[2,4,2]",
    "model.generator.output.kernel=2",
    "model.discriminator.filters=[24,32]",
]
S2_FIG12 = ["model.generator.norm_momentum=0.2", "model.generator.norm_eps=1e-5"]
S2_FIG45_D = "model.discriminator.filters=[32,64,64,128]"
S2_FIG4 = ["model.generator.filters=[128,64,64]", S2_FIG45_D]
S2_FIG5 = ["model.generator.filters=[128,128,64]", S2_FIG45_D]
RGB64 = (3, 64, 64)

# preset, overrides, (G trainable, G Keras total), (D trainable, D Keras total), output shape
COUNTS = [
    ("animal_faces28", [], (1_938_304, 1_963_776), (216_065, 216_065), (3, 28, 28)),
    ("anime_s1", [], (1_260_195, 1_260_643), (18_337, 18_337), RGB64),
    ("anime_s1", S1_RUN_LOGS, (1_157_283, 1_157_731), (18_337, 18_337), RGB64),  # kernels 4,4,2,2
    ("anime_s1", S1_HEAD, (960_675, 961_123), (15_809, 15_809), RGB64),  # the HEAD notebook
    ("anime_s2", [], (1_111_075, 1_119_715), (405_697, 406_593), RGB64),
    ("anime_s2", S2_FIG12, (1_111_075, 1_119_715), (405_697, 406_593), RGB64),  # BN only
    ("anime_s2", S2_FIG4, (1_144_323, 1_153_027), (138_881, 139_393), RGB64),
    ("anime_s2", S2_FIG5, (1_341_123, 1_349_955), (138_881, 139_393), RGB64),
    ("cifar_dcgan32", [], (1_466_115, 1_466_115), (522_497, 522_497), (3, 32, 32)),
    ("celeba64", [], (3_981_443, 3_983_235), (405_313, 405_825), RGB64),
    ("cat_faces64", [], (2_025_089, 2_025_985), (107_265, 107_265), (1, 64, 64)),
    # pytorch/examples dcgan at 64x64: its published G count (D has one head bias more)
    ("dcgan64", [], (3_576_704, 3_578_624), (2_765_569, 2_767_361), RGB64),
    # dcgan32 with one more block on each side, built for throughput at 64x64
    ("dcgan64_fast", [], (378_080, 378_560), (175_297, 175_745), RGB64),
]


@pytest.mark.parametrize(("preset", "overrides", "g_counts", "d_counts", "shape"), COUNTS)
def test_parameter_counts_and_shapes(preset, overrides, g_counts, d_counts, shape):
    model = compose(f"model={preset}", *overrides).model
    generator = Generator(model)
    discriminator = Discriminator(model, generator.output_shape[1])
    assert count_parameters(generator) == g_counts
    assert count_parameters(discriminator) == d_counts
    assert generator.output_shape == shape
    images = generator(torch.randn(2, model.latent_dim))
    assert images.shape == (2, *shape)
    assert discriminator(images).shape == (2,)


def test_output_range_follows_the_last_activation():
    tanh = Generator(compose("model=anime_s2").model)
    sigmoid = Generator(compose("model=celeba64").model)
    assert tanh.output_range == (-1.0, 1.0)
    assert sigmoid.output_range == (0.0, 1.0)
    out = sigmoid(torch.randn(4, 128))
    assert out.min() >= 0 and out.max() <= 1


def _apply(layers, x):
    for _, layer in layers:
        x = layer(x)
    return x


@pytest.mark.parametrize(
    ("kernel", "stride", "size", "padding"),
    [
        (5, 2, 28, (1, 2)),
        (3, 2, 64, (0, 1)),
        (4, 2, 64, (1, 1)),
        (3, 1, 32, (1, 1)),
        (4, 2, 28, (1, 1)),
    ],
)
def test_same_conv_pads_like_keras(kernel, stride, size, padding):
    layers, out = same_conv(1, 1, kernel, stride, size, bias=False)
    x = torch.randn(1, 1, size, size)
    weight = dict(layers)["conv"].weight
    top, bottom = padding
    expected = F.conv2d(F.pad(x, (top, bottom, top, bottom)), weight, stride=stride)
    assert out == -(-size // stride)
    assert torch.allclose(_apply(layers, x), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("kernel", "stride", "size"), [(4, 2, 7), (4, 1, 28), (3, 2, 8), (2, 2, 32), (5, 2, 6)]
)
def test_same_conv_transpose_is_the_adjoint_of_same_conv(kernel, stride, size):
    """Keras defines the transposed 'same' convolution as the exact adjoint of the 'same'
    convolution, so <convT(x), y> = <x, conv(y)> with shared weights."""
    torch.manual_seed(0)
    t_layers, out = same_conv_transpose(3, 2, kernel, stride, size, bias=False)
    c_layers, back = same_conv(2, 3, kernel, stride, out, bias=False)
    dict(c_layers)["conv"].weight.data.copy_(dict(t_layers)["conv"].weight.data)
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    y = torch.randn(2, 2, out, out, dtype=torch.float64)
    for _, layer in t_layers + c_layers:
        layer.double()
    assert out == size * stride and back == size
    lhs = (_apply(t_layers, x) * y).sum()
    rhs = (x * _apply(c_layers, y)).sum()
    assert torch.allclose(lhs, rhs, rtol=1e-10)


def test_batch_norm_momentum_is_converted_from_keras():
    model = compose("model=animal_faces28").model
    norms = [
        m
        for m in Generator(model).modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    ]
    assert norms and all(
        m.momentum == pytest.approx(0.2) and m.eps == pytest.approx(0.002) for m in norms
    )
    assert isinstance(norms[0], torch.nn.BatchNorm1d) and norms[0].num_features == 7 * 7 * 256


def test_dcgan64_fast_is_dcgan32_with_one_block_more_each_side_and_scales_with_width():
    small, fast = compose("model=dcgan32").model, compose("model=dcgan64_fast").model
    assert fast.generator.projection == small.generator.projection  # 128 channels at 4x4
    g_filters, d_filters = small.generator.filters, small.discriminator.filters
    assert fast.generator.filters == [*g_filters, g_filters[-1] // 2]  # halving as size doubles
    assert fast.discriminator.filters == [d_filters[0] // 2, *d_filters]
    for width, g_counts, d_counts in [
        (0.5, (146_032, 146_272), (44_641, 44_865)),
        (2, (1_100_224, 1_101_184), (694_657, 695_553)),
    ]:
        model = compose("model=dcgan64_fast", f"model.width={width}").model
        generator, discriminator = build_generator(model), build_discriminator(model, 64)
        assert count_parameters(generator) == g_counts
        assert count_parameters(discriminator) == d_counts
        images = generator(torch.randn(2, model.latent_dim))
        assert images.shape == (2, *RGB64) and discriminator(images).shape == (2,)
