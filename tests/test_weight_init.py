import pytest
import torch
import torchvision
from torch import nn

from nndoctor.result import Status
from tests import zoo
from tests.conftest import run_case, run_check


def _init_weights(model: nn.Module, init, layers=(nn.Linear, nn.Conv2d)) -> nn.Module:
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, layers):
                init(module.weight)
    return model


def deep_relu_mlp(depth: int = 8) -> nn.Sequential:
    layers = [nn.Linear(20, 64), nn.ReLU()]
    for _ in range(depth - 2):
        layers += [nn.Linear(64, 64), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(64, 4))


class LoRALinear(nn.Module):
    """A random base layer plus a low-rank update whose B starts at zero (LoRA)."""

    def __init__(self):
        super().__init__()
        self.base = nn.Linear(20, 64)
        self.lora_a = nn.Linear(20, 4, bias=False)
        self.lora_b = nn.Linear(4, 64, bias=False)
        self.head = nn.Linear(64, 4)
        nn.init.zeros_(self.lora_b.weight)

    def forward(self, x):
        return self.head(torch.relu(self.base(x) + self.lora_b(self.lora_a(x))))


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_models_pass(case):
    result = run_case("weight_init", case)
    assert result.status is Status.PASS, result.summary


def test_torchvision_resnet18_passes():
    model = torchvision.models.resnet18(weights=None, num_classes=10)
    result = run_check("weight_init", model, zoo.images(n=16, size=32), nn.CrossEntropyLoss())
    assert result.status is Status.PASS, result.summary
    assert result.metrics["layers"] == 21  # 20 convolutions and fc; batch-norm parameters are not judged


def test_all_zero_mlp_fails_naming_the_hidden_layers():
    model = zoo.mlp()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    result = run_check("weight_init", model, zoo.blobs())
    assert result.status is Status.FAIL
    assert "0.weight: all zero" in result.summary
    assert any(line.startswith("2.weight: all zero") for line in result.evidence)
    # the zero output layer alone would be fine: it is explained, not failed
    assert any(line.startswith("4.weight: the output layer") for line in result.evidence)


def test_constant_init_fails():
    model = _init_weights(zoo.mlp(), lambda w: nn.init.constant_(w, 0.5))
    result = run_check("weight_init", model, zoo.blobs())
    assert result.status is Status.FAIL
    assert "constant (0.5 everywhere" in result.summary


def test_identical_units_fail():
    model = zoo.mlp()
    with torch.no_grad():
        hidden = model[2].weight
        hidden.copy_(hidden[:1].expand_as(hidden))  # every unit a copy of the first: random, but symmetric
    result = run_check("weight_init", model, zoo.blobs())
    assert result.status is Status.FAIL
    assert "2.weight: identical units (64 units" in result.summary


def test_tiny_init_on_a_deep_net_fails():
    model = _init_weights(deep_relu_mlp(), lambda w: nn.init.normal_(w, 0.0, 1e-4))
    result = run_check("weight_init", model, zoo.blobs())
    assert result.status is Status.FAIL
    assert "too small" in result.summary and "He" in result.summary
    assert result.metrics["worst_off_by"] > 30
    assert "kaiming_normal_" in result.fix


def test_tiny_init_before_batch_norm_only_warns():
    # batch norm rescales each conv's output, so only the extreme scale (near BN's eps) is a warning
    model = _init_weights(zoo.SmallCNN(), lambda w: nn.init.normal_(w, 0.0, 1e-4), layers=(nn.Conv2d,))
    result = run_check("weight_init", model, zoo.images())
    assert result.status is Status.WARN
    assert "features.0.weight" in result.summary


def test_large_init_warns():
    model = _init_weights(deep_relu_mlp(depth=4), lambda w: nn.init.normal_(w, 0.0, 1.0))
    result = run_check("weight_init", model, zoo.blobs())
    assert result.status is Status.WARN
    assert "too large" in result.summary


def test_weights_offset_from_zero_warn():
    model = _init_weights(zoo.mlp(), nn.init.uniform_)  # uniform_ defaults to U(0, 1)
    result = run_check("weight_init", model, zoo.blobs())
    assert result.status is Status.WARN
    assert "offset from zero" in result.summary


def test_zero_head_and_zero_residual_branches_pass():
    # Fixup / zero-init residual: the last layer of every branch and the classifier start at zero
    model = zoo.ResidualMLP(blocks=4)
    with torch.no_grad():
        for block in model.blocks:
            block[3].weight.zero_()
        model.out[1].weight.zero_()
    result = run_check("weight_init", model, zoo.blobs())
    assert result.status is Status.PASS, result.summary
    assert sum("zero-initialized branch" in line for line in result.evidence) == 4
    assert any(line.startswith("out.1.weight: the output layer") for line in result.evidence)


def test_zero_lora_branch_passes():
    result = run_check("weight_init", LoRALinear(), zoo.blobs())
    assert result.status is Status.PASS, result.summary


def test_zero_hidden_layer_in_a_plain_chain_fails():
    # unlike a residual branch, nothing bypasses it: every later layer sees the same input
    model = deep_relu_mlp(depth=4)
    with torch.no_grad():
        model[2].weight.zero_()
    result = run_check("weight_init", model, zoo.blobs())
    assert result.status is Status.FAIL
    assert "2.weight: all zero" in result.summary


def test_zero_token_embedding_fails():
    model = zoo.GRUClassifier()
    with torch.no_grad():
        model.embed.weight.zero_()
    result = run_check("weight_init", model, zoo.tokens())
    assert result.status is Status.FAIL
    assert "embed.weight: all zero" in result.summary


def test_frozen_weights_are_not_judged():
    model = _init_weights(zoo.mlp(), lambda w: nn.init.constant_(w, 1 / 9), layers=(nn.Linear,))
    model[0].weight.requires_grad_(False)  # a fixed averaging layer, say
    model[2].reset_parameters()
    model[4].reset_parameters()
    result = run_check("weight_init", model, zoo.blobs())
    assert result.status is Status.PASS, result.summary
    assert result.metrics["frozen_not_judged"] == 1


def test_table_and_plot_show_std_with_depth():
    result = run_check("weight_init", deep_relu_mlp(depth=4), zoo.blobs())
    table = result.tables[0]
    assert [row[0] for row in table.rows] == ["0.weight", "2.weight", "4.weight", "6.weight"]
    assert table.rows[0][2] == "ReLU" and table.rows[-1][2] == "output"
    plot = result.plots[0]
    assert plot.name == "weight_std" and plot.log_y
    assert len(plot.series[0][2]) == 4


def test_thresholds_are_overridable():
    model = _init_weights(deep_relu_mlp(depth=4), lambda w: nn.init.normal_(w, 0.0, 1.0))
    result = run_check("weight_init", model, zoo.blobs(), thresholds={"std_ratio_warn": 100.0})
    assert result.status is Status.PASS
