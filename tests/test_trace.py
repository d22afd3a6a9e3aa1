import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nndoctor.probes.trace import EMBEDDING, NORM, WEIGHT, TraceUnavailable, trace_model
from tests import zoo


class Block(nn.Module):
    """Two functional activations in one forward, one of them a clamp(min=0)."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        return torch.relu(self.fc(x)).clamp(min=0) + torch.tanh(x)


class FunctionalNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(8, 16)
        self.block = Block()
        self.act = nn.ReLU()
        self.gate = nn.Parameter(torch.zeros(16))
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        h = self.act(self.inp(x))
        h = self.block(h) * torch.sigmoid(self.gate)  # a learned gate, not an activation of the batch
        return self.head(F.gelu(h))


def names(trace_):
    return [a.name for a in trace_.activations]


@pytest.fixture(scope="module")
def functional_trace():
    torch.manual_seed(0)
    return trace_model(FunctionalNet(), torch.randn(64, 8))


def test_functional_calls_are_named_by_the_module_running_them(functional_trace):
    assert names(functional_trace) == ["act", "block:relu#1", "block:relu#2", "block:tanh#1", "FunctionalNet:gelu#1"]
    kinds = {a.name: (a.kind, a.functional) for a in functional_trace.activations}
    assert kinds["act"] == ("relu", False)
    assert kinds["block:relu#2"] == ("relu", True)  # clamp(min=0) is a ReLU


def test_activation_modules_are_counted_once():
    model = nn.Sequential(
        nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU6(), nn.Linear(8, 8), nn.Hardtanh(), nn.Linear(8, 2)
    )
    result = trace_model(model, torch.randn(32, 4))
    assert [(a.name, a.kind) for a in result.activations] == [("1", "relu"), ("3", "relu6"), ("5", "hardtanh")]


def test_functional_activations_inside_torch_modules_are_seen():
    # TransformerEncoderLayer applies its ReLU as a function (activation=F.relu), in train mode.
    result = trace_model(zoo.TransformerClassifier(), torch.randint(0, 50, (16, 12)))
    assert names(result) == ["encoder.layers.0:relu#1", "encoder.layers.1:relu#1"]
    assert result.activations[0].units == 64  # the feed-forward width, the last dimension


def test_a_module_called_twice_gets_one_record_per_call():
    class Shared(nn.Module):  # like torchvision's BasicBlock, which reuses self.relu
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.relu(self.fc(self.relu(self.fc(x))))

    result = trace_model(Shared(), torch.randn(32, 8))
    assert names(result) == ["relu", "relu#2"]
    assert [layer.name for layer in result.layers] == ["fc", "fc#2"]


def test_inplace_activation_is_measured_before_it_overwrites_its_input():
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(inplace=True))
    result = trace_model(model, torch.randn(256, 8))
    relu = result.activations[0]
    assert 0.3 < relu.positive_share < 0.7  # after the in-place call every value would be >= 0
    assert relu.input_mean < relu.output_mean


def test_units_are_channels_for_images_and_features_for_sequences():
    conv = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    sequence = nn.Sequential(nn.Linear(5, 6), nn.Tanh())
    assert trace_model(conv, torch.randn(16, 3, 10, 10)).activations[0].units == 8
    assert trace_model(sequence, torch.randn(16, 7, 5)).activations[0].units == 6


def test_dead_units_are_those_never_active_on_the_batch():
    model = nn.Sequential(nn.Linear(8, 10), nn.ReLU(), nn.Linear(10, 2))
    with torch.no_grad():
        model[0].bias[:4] = -100.0
    relu = trace_model(model, torch.randn(128, 8)).activations[0]
    assert relu.dead_units == 4
    assert relu.ever_active.tolist() == [False] * 4 + [True] * 6


def test_saturation_floor_is_the_magnitude_most_values_exceed():
    model = nn.Sequential(nn.Linear(4, 2), nn.Tanh(), nn.Linear(2, 1))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.copy_(torch.tensor([5.0, 0.0]))
    tanh = trace_model(model, torch.randn(100, 4)).activations[0]
    assert tanh.saturation_floor.tolist() == [5.0, 0.0]


def test_layers_carry_role_and_the_input_driven_std():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(20, 8)
            self.norm = nn.LayerNorm(8)
            self.rnn = nn.GRU(8, 8, batch_first=True)
            self.constant = nn.Linear(8, 8)
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            out, _ = self.rnn(self.norm(self.embed(x)))
            return self.head(self.constant(out[:, -1]))

    model = Net()
    with torch.no_grad():
        model.constant.weight.zero_()  # outputs its bias: spread over units, none over samples
    result = trace_model(model, torch.randint(0, 20, (32, 6)))
    assert [(layer.name, layer.role) for layer in result.layers] == [
        ("embed", EMBEDDING), ("norm", NORM), ("rnn", WEIGHT), ("constant", WEIGHT), ("head", WEIGHT)
    ]
    constant = result.layers[3]
    assert constant.unit_std == pytest.approx(0.0, abs=1e-6) and constant.std > 0.05
    assert constant.weight_rms == 0.0
    assert result.layers[1].std == pytest.approx(1.0, abs=0.05)


def test_the_activation_returned_as_prediction_is_marked():
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1), nn.Sigmoid())
    result = trace_model(model, torch.randn(16, 4))
    assert [a.is_output for a in result.activations] == [False, True]


def test_hooks_and_modes_are_restored():
    model = FunctionalNet().eval()
    model.block.train()
    trace_model(model, torch.randn(16, 8))
    assert not model.training and model.block.training and not model.head.training
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
    # The function mode is gone: a later torch call is not recorded anywhere.
    again = trace_model(model, torch.randn(16, 8))
    assert names(again) == ["act", "block:relu#1", "block:relu#2", "block:tanh#1", "FunctionalNet:gelu#1"]


def test_hooks_are_removed_when_the_forward_raises():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            torch.relu(self.fc(x))
            raise ValueError("bug in forward")

    model = Broken().eval()
    with pytest.raises(ValueError):
        trace_model(model, torch.randn(8, 4))
    assert not model.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert torch.relu(torch.ones(1)).item() == 1.0


def test_an_exception_caught_inside_forward_keeps_the_names_right():
    class Failing(nn.Module):
        def forward(self, x):
            raise ValueError("optional branch unavailable")

    class Tolerant(nn.Module):
        def __init__(self):
            super().__init__()
            self.optional, self.fc = Failing(), nn.Linear(4, 4)

        def forward(self, x):
            try:
                self.optional(x)
            except ValueError:
                pass
            return torch.relu(self.fc(x))

    assert names(trace_model(Tolerant(), torch.randn(8, 4))) == ["Tolerant:relu#1"]


def test_dropout_modules_are_reported_and_train_mode_is_used():
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2)).eval()
    result = trace_model(model, torch.randn(64, 8) * 5 + 3)
    assert result.dropout == ("3",)
    assert result.layers[1].std == pytest.approx(1.0, abs=0.05)  # batch statistics, as in training
    assert not model.training


def test_tuple_inputs_are_passed_as_arguments():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.left, self.right = nn.Linear(4, 8), nn.Linear(6, 8)

        def forward(self, a, b):
            return torch.relu(self.left(a)) + torch.sigmoid(self.right(b))

    result = trace_model(TwoInputs(), (torch.randn(16, 4), torch.randn(16, 6)))
    assert names(result) == ["TwoInputs:relu#1", "TwoInputs:sigmoid#1"]


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_torchscript_models_cannot_be_traced_but_scripted_parts_are_passed_over():
    with pytest.raises(TraceUnavailable):
        trace_model(torch.jit.script(nn.Sequential(nn.Linear(4, 4), nn.ReLU())), torch.randn(8, 4))
    model = nn.Sequential(torch.jit.script(nn.Sequential(nn.Linear(4, 4), nn.Tanh())), nn.Linear(4, 4), nn.ReLU())
    result = trace_model(model, torch.randn(8, 4))
    assert names(result) == ["2"] and [layer.name for layer in result.layers] == ["1"]
