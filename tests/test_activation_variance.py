import pytest
import torch
import torchvision
from torch import nn
from torch.utils.data import TensorDataset

from nndoctor.result import Status
from tests import zoo
from tests.conftest import run_case, run_check

SOUND = (Status.PASS, Status.SKIP)


def plain_mlp(depth: int = 12, width: int = 64, std: float | None = None) -> nn.Sequential:
    """depth Linear+ReLU layers and a head; weights N(0, std) when std is given, else He."""
    layers, fan_in = [], 20
    for _ in range(depth):
        linear = nn.Linear(fan_in, width)
        if std is None:
            nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
        else:
            nn.init.normal_(linear.weight, 0.0, std)
        layers += [linear, nn.ReLU()]
        fan_in = width
    return nn.Sequential(*layers, nn.Linear(width, 4))


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_models_pass(case):
    result = run_case("activation_variance", case)
    assert result.status in SOUND, result.summary


@pytest.mark.parametrize("zero_init_residual", [False, True])
def test_resnet18_is_not_flagged(zero_init_residual):
    model = torchvision.models.resnet18(num_classes=10, zero_init_residual=zero_init_residual)
    result = run_check("activation_variance", model, zoo.images(n=32, size=32), nn.CrossEntropyLoss())
    assert result.status is Status.PASS, result.summary
    assert result.metrics["normalization_off_band"] == 0


def test_deep_plain_he_initialized_mlp_passes():
    result = run_check("activation_variance", plain_mlp(), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.PASS, result.summary
    assert result.metrics["depth_ratio"] < 10


def test_tiny_init_vanishes_with_depth():
    result = run_check("activation_variance", plain_mlp(std=0.01), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert result.metrics["direction"] == "vanishing"
    assert result.metrics["depth_ratio"] > 1e4
    # 22 layers at 0.01x: the std falls by ~1e-40, so depending on the draw it ends tiny or at exactly 0
    assert "vanish" in result.summary
    assert ("from 0 (" in result.summary and "to 22 (" in result.summary) or "no longer vary" in result.summary
    assert "kaiming_normal_" in result.fix


def test_large_init_explodes_with_depth():
    result = run_check("activation_variance", plain_mlp(std=1.0), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert result.metrics["direction"] == "exploding"
    assert "explode" in result.summary


def test_signal_lost_entirely_names_where_it_vanished():
    # Every unit of the second ReLU is dead, so from the third layer on outputs are the same for
    # every sample: only their biases remain.
    model = plain_mlp(depth=4)
    nn.init.constant_(model[2].bias, -100.0)
    result = run_check("activation_variance", model, zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "from 4 on, outputs no longer vary across samples" in result.summary


def test_moderate_shrinkage_warns():
    # Eight layers at half the He scale: std shrinks ~0.5x per layer, ~128x overall.
    result = run_check("activation_variance", plain_mlp(depth=8, std=0.5 * (2 / 64) ** 0.5), zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.WARN, result.summary


def test_normalization_swamped_by_eps_warns():
    # BatchNorm1d(64, 0.1) sets eps = 0.1, not momentum: with a small-variance input the output
    # std stays far below 1.
    model = nn.Sequential(nn.Linear(20, 64), nn.BatchNorm1d(64, 0.1), nn.ReLU(), nn.Linear(64, 4))
    nn.init.normal_(model[0].weight, 0.0, 0.01)
    result = run_check("activation_variance", model, zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.WARN
    assert "1 (BatchNorm1d) output std" in result.evidence[0]
    assert "eps" in result.fix


def test_normalization_gain_far_from_one_warns():
    model = zoo.ResidualMLP(blocks=3)
    nn.init.constant_(model.blocks[1][0].weight, 10.0)
    result = run_check("activation_variance", model, zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.WARN
    assert "blocks.1.0" in result.summary


def test_table_and_plot_cover_every_layer():
    result = run_check("activation_variance", zoo.ResidualMLP(blocks=2), zoo.blobs(), nn.CrossEntropyLoss())
    table = result.tables[0]
    assert [row[0] for row in table.rows][:3] == ["inp", "blocks.0.0", "blocks.0.1"]
    assert table.rows[-1][2].startswith("output layer")
    plot = result.plots[0]
    assert plot.name == "activation_std" and plot.log_y
    assert sum(len(xs) for _, xs, _ in plot.series) == len(table.rows)


def test_thresholds_are_overridable():
    torch.manual_seed(0)  # a draw whose activations shrink ~1e-20x but stay above 0 (std 0.01 can reach exactly 0)
    result = run_check(
        "activation_variance", plain_mlp(std=0.03), zoo.blobs(), nn.CrossEntropyLoss(),
        thresholds={"depth_ratio_warn": 1e30, "depth_ratio_fail": 1e31},
    )
    assert result.status is Status.PASS


def test_zero_initialized_network_carries_no_signal():
    model = nn.Sequential(nn.Linear(20, 32), nn.LeakyReLU(0.01), nn.Linear(32, 4))
    for parameter in model.parameters():
        nn.init.zeros_(parameter)
    result = run_check("activation_variance", model, zoo.blobs(), nn.CrossEntropyLoss())
    assert result.status is Status.FAIL
    assert "no hidden layer's output varies across samples" in result.summary


def test_mobilenet_v3_gets_no_cause_that_contradicts_its_evidence():
    """torchvision's MobileNetV3 on 64 px inputs (2x2 maps in its last blocks): its tiny depthwise
    init (kaiming fan_out counts all 576 channels) falls below BatchNorm's eps=1e-3, so two
    BatchNorm outputs have a *small* std. Whatever that warning is worth, no likely cause may read it
    as activations exploding (the old cause #1), nor as a depth trend at all."""
    from nndoctor import api

    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v3_small(num_classes=10)
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(64, 3, 64, 64, generator=g), torch.arange(64) % 10)
    report = api.check(model, data, loss_fn=nn.CrossEntropyLoss(), device="cpu",
                       only=["activation_variance", "gradient_flow", "initial_loss", "weight_init"])
    result = report.result("activation_variance")
    assert result.metrics["direction"] is None
    assert not {"exploding_gradients", "vanishing_gradients"} & {c.key for c in report.causes}, report.causes
