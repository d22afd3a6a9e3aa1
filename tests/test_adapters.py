"""Frameworks' shapes, unchanged: Lightning-style modules, dict/tuple/.logits outputs, dict items,
optimizer instances. Each adapter must give the checks the same setup the user trains."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from nndoctor import adapters, check
from nndoctor.errors import InputError
from nndoctor.loading import build_subject
from nndoctor.result import Status
from tests import zoo

# Forward/backward checks: fast, and between them they use the loss (initial_loss), the output
# (output_head), the optimizer (update_ratio) and the backward pass (gradient_flow).
FAST = ["initial_loss", "output_head", "gradient_flow", "update_ratio"]


def statuses(report) -> dict[str, Status]:
    return {r.id: r.status for r in report.results}


def assert_sound(report) -> None:
    bad = {r.id: r.summary for r in report.results if r.status not in (Status.PASS, Status.SKIP)}
    assert not bad, bad


# --- Lightning-style modules --------------------------------------------------------------------


class LitModel(nn.Module):
    """What a LightningModule looks like to nndoctor: forward, training_step, configure_optimizers.
    ``loss`` is called as a plain function, as with F.cross_entropy in a training_step."""

    def __init__(self, net: nn.Module, loss=F.cross_entropy, lr: float = 0.05, sign: float = 1.0):
        super().__init__()
        self.net = net
        self.loss = loss if not isinstance(loss, nn.Module) else (lambda o, t, m=loss: m(o, t))
        self.lr, self.sign = lr, sign
        self.logged = {}

    def forward(self, x):
        return self.net(x)

    def log(self, name, value):
        self.logged[name] = value

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.sign * self.loss(self(x), y)
        self.log("train_loss", loss)
        return {"loss": loss}

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)
        warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: min(1.0, epoch / 100))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": warmup, "interval": "step"}}


@pytest.mark.parametrize("case", zoo.sound_cases(), ids=lambda c: c.name)
def test_sound_models_pass_as_lightning_modules(case):
    lit = LitModel(case.model, loss=case.loss_fn, lr=1e-3)
    report = check(lit, case.dataset, device="cpu", only=FAST)
    assert_sound(report)
    assert any("training_step" in note for note in report.notes)


def test_loss_and_optimizer_come_from_the_module():
    torch.manual_seed(0)
    report = check(LitModel(zoo.mlp()), zoo.blobs(), device="cpu", only=FAST)
    assert_sound(report)
    notes = " ".join(report.notes)
    assert "Loss: LitModel.training_step" in notes
    assert "LitModel.configure_optimizers(): SGD (lr=0.05, momentum=0.9" in notes
    assert "scheduler is not applied" in notes
    assert report.result("update_ratio").metrics  # measured with the module's SGD


def test_a_maximized_training_step_loss_fails_initial_loss():
    """A sign error in training_step (``return -loss``): the checks see the step's own loss."""
    torch.manual_seed(0)
    report = check(LitModel(zoo.mlp(), sign=-1.0), zoo.blobs(), device="cpu", only=["initial_loss"])
    result = report.result("initial_loss")
    assert result.status is Status.FAIL and "negative" in result.summary


def test_configure_optimizers_learning_rate_is_judged_at_its_base_value():
    """lr=20 behind a warm-up that starts at 0: the checks train at 20, and update_ratio fails."""
    torch.manual_seed(0)
    report = check(LitModel(zoo.mlp(), lr=20.0), zoo.blobs(), device="cpu", only=["update_ratio"])
    assert report.result("update_ratio").status is Status.FAIL


class CriterionLit(LitModel):
    def __init__(self):
        super().__init__(zoo.mlp())
        self.criterion = nn.CrossEntropyLoss(label_smoothing=0.1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return self.criterion(self(x), y)


def test_a_criterion_module_that_training_step_applies_is_used_as_the_loss():
    """The checks that know torch's losses (label smoothing, class weights) then see it as such."""
    subject = build_subject(Path("<test>"), CriterionLit(), zoo.blobs(), device="cpu")
    assert isinstance(subject.loss_fn, nn.CrossEntropyLoss) and subject.loss_fn.label_smoothing == 0.1
    assert subject.loss_source == "CriterionLit.criterion, which CriterionLit.training_step applies"


class EncoderStep(LitModel):
    """training_step computes its prediction without forward (the autoencoder tutorial's style)."""

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.net(x.view(x.size(0), -1)), y)


class NoForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = zoo.mlp()

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


@pytest.mark.parametrize("module, says", [
    (EncoderStep(zoo.mlp()), "Pass the loss instead"),
    (NoForward(), "give the Lightning module a forward"),
])
def test_a_loss_nndoctor_cannot_take_from_training_step_is_asked_for(module, says):
    with pytest.raises(InputError, match=says):
        check(module, zoo.blobs(), device="cpu", only=["initial_loss"])


def test_an_explicit_loss_and_optimizer_win_over_the_module():
    module = EncoderStep(zoo.mlp())  # its training_step cannot be used: the given loss must be
    report = check(module, zoo.blobs(), loss_fn=nn.CrossEntropyLoss(), optimizer=lambda p: torch.optim.Adam(p, lr=1e-3),
                   device="cpu", only=["initial_loss"])
    assert report.result("initial_loss").status is Status.PASS
    assert "Optimizer: given" in " ".join(report.notes)


@pytest.mark.parametrize("shape", ["optimizer", "list", "dict", "lists", "dicts"])
def test_every_configure_optimizers_return_shape_is_read(shape):
    class Shaped(LitModel):
        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.07)
            sched = torch.optim.lr_scheduler.StepLR(opt, 10)
            return {
                "optimizer": opt, "list": [opt], "dict": {"optimizer": opt, "lr_scheduler": sched},
                "lists": ([opt], [sched]), "dicts": [{"optimizer": opt, "lr_scheduler": sched}],
            }[shape]

    module = Shaped(zoo.mlp())
    factory, source, _ = adapters.lightning_optimizer(module, "<test>")
    copy_ = copy.deepcopy(module)
    optimizer = factory(copy_.parameters())
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.param_groups[0]["lr"] == 0.07
    assert {id(p) for p in optimizer.param_groups[0]["params"]} == {id(p) for p in copy_.parameters()}
    assert "SGD (lr=0.07" in source


def test_configure_optimizers_that_needs_a_trainer_is_reported():
    class NeedsTrainer(LitModel):
        def configure_optimizers(self):
            raise RuntimeError("LitModel is not attached to a `Trainer`")

    with pytest.raises(InputError, match="configure_optimizers.. raised RuntimeError.*pass an optimizer factory"):
        check(NeedsTrainer(zoo.mlp()), zoo.blobs(), device="cpu", only=["initial_loss"])


def test_a_real_lightning_module():
    lightning = pytest.importorskip("lightning")

    class Real(lightning.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = zoo.mlp()

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = F.cross_entropy(self(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=1e-3)

    torch.manual_seed(0)
    report = check(Real(), zoo.blobs(), device="cpu", only=FAST)
    assert_sound(report)
    assert "Real.configure_optimizers(): AdamW" in " ".join(report.notes)


# --- outputs: dict, tuple, .logits --------------------------------------------------------------


@dataclass
class ModelOutput:
    """A Hugging Face style output object."""

    logits: torch.Tensor
    hidden_states: torch.Tensor


class Wrapped(nn.Module):
    """zoo.mlp() returning its logits inside a structure, as many libraries do."""

    def __init__(self, kind: str, scale: float = 1.0):
        super().__init__()
        self.body = nn.Sequential(*list(zoo.mlp())[:-1])
        self.head = nn.Linear(64, 4)
        with torch.no_grad():
            self.head.weight.mul_(scale)
        self.kind = kind

    def forward(self, x):
        hidden = self.body(x)
        logits = self.head(hidden)
        return {
            "dict": {"logits": logits, "hidden": hidden},
            "tuple": (logits, hidden),
            "object": ModelOutput(logits, hidden),
            "named": {"hidden": hidden, "scores": logits},  # the prediction is not first: output="scores"
        }[self.kind]


@pytest.mark.parametrize("kind", ["dict", "tuple", "object", "named"])
def test_structured_outputs_are_examined_on_the_prediction(kind):
    torch.manual_seed(0)
    output = "scores" if kind == "named" else None
    sound = check(Wrapped(kind), zoo.blobs(), nn.CrossEntropyLoss(), device="cpu", only=FAST, output=output)
    assert_sound(sound)
    assert "4 logits" in sound.result("output_head").summary
    broken = check(Wrapped(kind, scale=50.0), zoo.blobs(), nn.CrossEntropyLoss(), device="cpu",
                   only=["initial_loss"], output=output)
    assert broken.result("initial_loss").status is Status.FAIL


def test_an_output_selector_that_misses_is_bad_input():
    with pytest.raises(InputError, match="cannot find the prediction"):
        check(Wrapped("dict"), zoo.blobs(), nn.CrossEntropyLoss(), device="cpu", only=["initial_loss"], output="scores")


# --- dict items (Hugging Face style) ------------------------------------------------------------


class TinyEncoder(nn.Module):
    """A two-layer transformer classifier taking input_ids and attention_mask, returning .logits.
    ``centre_over_batch`` is a broken variant that subtracts the batch mean of the pooled features
    (a hand-rolled normalization): every sample's prediction then depends on the others."""

    def __init__(self, vocab: int = 50, dim: int = 32, classes: int = 3, centre_over_batch: bool = False):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        layer = nn.TransformerEncoderLayer(dim, nhead=4, dim_feedforward=64, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(dim, classes)
        self.centre_over_batch = centre_over_batch

    def forward(self, input_ids, attention_mask):
        hidden = self.encoder(self.embed(input_ids), src_key_padding_mask=attention_mask == 0)
        mask = attention_mask.unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        if self.centre_over_batch:
            pooled = pooled - pooled.mean(0, keepdim=True)
        return ModelOutput(self.head(pooled), hidden)


class TokenItems(Dataset):
    """Padded token sequences as dicts of plain lists and ints, as a tokenizer and a Hugging Face
    dataset without set_format("torch") give them; the class is the band of the first tokens."""

    def __init__(self, n: int = 96, length: int = 12, vocab: int = 50, classes: int = 3, label_key: str = "labels"):
        g = torch.Generator().manual_seed(0)
        self.labels = torch.arange(n) % classes
        self.ids = torch.randint(1, vocab, (n, length), generator=g)
        band = vocab // classes
        for i, label in enumerate(self.labels.tolist()):
            self.ids[i, :4] = torch.randint(label * band + 1, (label + 1) * band, (4,), generator=g)
        self.lengths = torch.randint(6, length + 1, (n,), generator=g)
        self.label_key = label_key

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        mask = [int(j < self.lengths[i]) for j in range(self.ids.shape[1])]
        ids = [t * m for t, m in zip(self.ids[i].tolist(), mask)]
        return {"input_ids": ids, "attention_mask": mask, self.label_key: int(self.labels[i])}


def test_dict_items_reach_a_transformer_as_keyword_arguments():
    torch.manual_seed(0)
    report = check(TinyEncoder(), TokenItems(), device="cpu", only=[*FAST, "batch_independence"])
    assert_sound(report)
    assert report.task == "classification"


def test_a_dict_batch_model_that_mixes_samples_fails_batch_independence():
    torch.manual_seed(0)
    report = check(TinyEncoder(centre_over_batch=True), TokenItems(), device="cpu", only=["batch_independence"])
    assert report.result("batch_independence").status is Status.FAIL


def test_target_key_and_input_key():
    dataset = TokenItems(label_key="sentiment")
    with pytest.raises(InputError, match=r"dicts \(input_ids, attention_mask, sentiment\).*target_key"):
        check(TinyEncoder(), dataset, device="cpu", only=["initial_loss"])
    report = check(TinyEncoder(), dataset, device="cpu", only=["initial_loss"], target_key="sentiment")
    assert report.result("initial_loss").status is Status.PASS
    subject = build_subject(Path("<test>"), zoo.GRUClassifier(classes=3), dataset, device="cpu",
                            target_key="sentiment", input_key="input_ids")
    inputs, target = subject.dataset[0]
    assert isinstance(inputs, torch.Tensor) and inputs.shape == (12,) and int(target) == 0


def test_keys_for_tuple_items_are_an_error_not_ignored():
    with pytest.raises(InputError, match="target_key/input_key are set"):
        check(zoo.mlp(), zoo.blobs(), device="cpu", only=["initial_loss"], target_key="labels")


# --- optimizer instances ------------------------------------------------------------------------


def grouped_adamw(model: nn.Sequential) -> torch.optim.AdamW:
    """Fine-tuning style groups: a smaller LR for the body, no weight decay on biases, the first
    layer frozen out of the optimizer altogether."""
    body_weights = [model[2].weight]
    biases = [model[2].bias, model[4].bias]
    return torch.optim.AdamW([
        {"params": body_weights, "lr": 1e-4},
        {"params": biases, "weight_decay": 0.0},
        {"params": [model[4].weight]},
    ], lr=1e-3, weight_decay=0.05)


def test_an_optimizer_instance_is_rebuilt_group_by_group_for_a_copy():
    model = zoo.mlp()
    original = grouped_adamw(model)
    factory = adapters.optimizer_factory(original, model.parameters())
    copy_ = copy.deepcopy(model)
    rebuilt = factory(copy_.parameters())
    assert type(rebuilt) is torch.optim.AdamW
    for old, new in zip(original.param_groups, rebuilt.param_groups):
        assert [p.shape for p in old["params"]] == [p.shape for p in new["params"]]
        assert all(any(p is q for q in copy_.parameters()) for p in new["params"])
        assert {k: v for k, v in old.items() if k != "params"} == {k: v for k, v in new.items() if k != "params"}
    assert not any(p is copy_[0].weight for g in rebuilt.param_groups for p in g["params"])  # still frozen out
    fallback = factory(nn.Linear(3, 1).parameters())  # not a copy: one group with the defaults
    assert len(fallback.param_groups) == 1 and fallback.param_groups[0]["weight_decay"] == 0.05


def test_a_scheduler_warm_up_does_not_leak_into_the_rebuilt_learning_rate():
    model = zoo.mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
    torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01)
    rebuilt = adapters.optimizer_factory(optimizer, model.parameters())(copy.deepcopy(model).parameters())
    assert rebuilt.param_groups[0]["lr"] == 0.3


# --- the same through the CLI: a model file and its nndoctor.yaml --------------------------------

LIGHTNING_FILE = '''
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset


class LitClassifier(nn.Module):  # a lightning.LightningModule in a real project
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 3))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=LR)


def build_model():
    return LitClassifier()


def build_dataset():
    labels = torch.arange(96) % 3
    x = torch.randn(96, 12, generator=torch.Generator().manual_seed(0))
    return TensorDataset(x, labels)
'''

DICT_FILE = '''
from tests.test_adapters import TinyEncoder, TokenItems


class Scored(TinyEncoder):
    def forward(self, input_ids, attention_mask):
        out = super().forward(input_ids, attention_mask)
        return {"hidden": out.hidden_states, "scores": out.logits}


output_key = "scores"


def build_model():
    return Scored()


def build_dataset():
    return TokenItems(label_key="sentiment")
'''


def run_cli(path, *options):
    from typer.testing import CliRunner

    from nndoctor.cli import app

    result = CliRunner().invoke(app, ["check", str(path), "--json", "-", "--device", "cpu", *options],
                                env={"CI": None, "GITHUB_ACTIONS": None}, catch_exceptions=False)
    assert result.exit_code in (0, 1), result.stderr
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize("lr, exit_code", [(0.05, 0), (50.0, 1)])
def test_a_lightning_model_file_runs_unchanged(tmp_path, lr, exit_code):
    path = tmp_path / "model.py"
    path.write_text(LIGHTNING_FILE.replace("LR", str(lr)), encoding="utf-8")
    code, report = run_cli(path, "--only", "initial_loss,update_ratio")
    assert code == exit_code
    assert f"Optimizer: LitClassifier.configure_optimizers(): SGD (lr={lr}" in " ".join(report["notes"])
    assert {c["id"]: c["status"] for c in report["checks"]}["update_ratio"] == ("pass" if exit_code == 0 else "fail")


def test_dict_items_and_output_key_from_the_model_file_and_config(tmp_path):
    (tmp_path / "model.py").write_text(DICT_FILE, encoding="utf-8")
    (tmp_path / "nndoctor.yaml").write_text("model: model.py\ntarget_key: sentiment\n", encoding="utf-8")
    code, report = run_cli(tmp_path / "nndoctor.yaml", "--only", "initial_loss,output_head")
    checks = {c["id"]: c for c in report["checks"]}
    assert code == 0 and checks["initial_loss"]["status"] == "pass"
    assert "3 logits" in checks["output_head"]["summary"]


# --- self-supervised steps and torch.compile (issue 14) ------------------------------------------


class LitAutoEncoder(nn.Module):
    """Lightning's autoencoder tutorial with a forward: the step flattens the images and compares
    the reconstruction with them (the labels are ignored)."""

    def __init__(self, loss=F.mse_loss, bottleneck: int = 16):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(3 * 16 * 16, 64), nn.ReLU(), nn.Linear(64, bottleneck))
        self.decoder = nn.Sequential(nn.Linear(bottleneck, 64), nn.ReLU(), nn.Linear(64, 3 * 16 * 16))
        self.loss = loss

    def forward(self, x):
        return self.decoder(self.encoder(x.view(x.size(0), -1)))

    def training_step(self, batch, batch_idx):
        x, _ = batch
        x = x.view(x.size(0), -1)
        x_hat = self.decoder(self.encoder(x))
        return self.loss(x_hat, x)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


@pytest.mark.parametrize("loss, name", [(F.mse_loss, "MSELoss"), (F.l1_loss, "L1Loss")])
def test_an_autoencoder_training_step_is_checked_as_a_reconstruction(loss, name):
    torch.manual_seed(0)
    report = check(LitAutoEncoder(loss), zoo.images(n=128), device="cpu", only=[*FAST, "data_integrity", "overfit_small_batch"])
    assert_sound(report)
    assert report.task == "regression"
    notes = " ".join(report.notes)
    assert f"{name} between forward's output and the input" in notes and "target = input" in notes


def test_an_autoencoder_whose_forward_returns_the_code_is_still_refused():
    """forward gives the embedding, the step reconstructs through the decoder: no prediction to examine."""

    class CodeForward(LitAutoEncoder):
        def forward(self, x):
            return self.encoder(x.view(x.size(0), -1))

    with pytest.raises(InputError, match="Pass the loss instead"):
        check(CodeForward(), zoo.images(n=32), device="cpu", only=["initial_loss"])


def test_a_step_whose_own_loss_differs_from_forward_based_loss_is_refused():
    """A step that adds a term nndoctor cannot see through forward is asked for, not silently dropped."""

    class ExtraTerm(LitModel):
        def training_step(self, batch, batch_idx):
            x, y = batch
            return F.cross_entropy(self(x), y) + 0.5 * F.cross_entropy(self(x * 0), y)

    with pytest.raises(InputError, match="differs"):
        check(ExtraTerm(zoo.mlp()), zoo.blobs(), device="cpu", only=["initial_loss"])


def test_a_compiled_model_is_examined_on_its_original_module():
    from torch._dynamo.utils import counters

    torch.manual_seed(0)
    model = zoo.mlp()
    compiled = torch.compile(model)
    counters.clear()
    report = check(compiled, zoo.blobs(), device="cpu", only=FAST)
    assert_sound(report)
    assert "_orig_mod" in " ".join(report.notes)
    assert not counters["stats"]["unique_graphs"]  # nothing was compiled: no dynamo warnings, no minutes spent


def test_a_real_lightning_autoencoder():
    lightning = pytest.importorskip("lightning")

    class RealAutoEncoder(lightning.LightningModule):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(3 * 16 * 16, 64), nn.ReLU(), nn.Linear(64, 16))
            self.decoder = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 3 * 16 * 16))

        def forward(self, x):
            return self.decoder(self.encoder(x.view(x.size(0), -1)))

        def training_step(self, batch, batch_idx):
            x, _ = batch
            loss = F.mse_loss(self(x), x.view(x.size(0), -1))
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    torch.manual_seed(0)
    report = check(RealAutoEncoder(), zoo.images(n=64), device="cpu", only=FAST)
    assert_sound(report)
    assert "target = input" in " ".join(report.notes)


class OneCycleLit(LitModel):
    """configure_optimizers with OneCycleLR: the group's lr and initial_lr are the warm-up's start
    (max_lr / 25 = 0.00012); the configured LR is max_lr, 0.003, while the constructor says 0.001."""

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=0.001)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.003, total_steps=1000)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def test_a_one_cycle_schedule_is_reported_with_one_configured_lr_everywhere():
    torch.manual_seed(0)
    report = check(OneCycleLit(zoo.mlp()), zoo.blobs(), device="cpu", only=["update_ratio", "lr_range"])
    assert "AdamW (lr=0.003," in " ".join(report.notes)
    assert report.result("update_ratio").metrics["lr"] == pytest.approx(0.003)
    assert "lr 0.003 " in report.result("lr_range").summary
    shown = " ".join(r.summary + " ".join(r.evidence) for r in report.results)
    assert "0.00012" not in shown and "lr 0.001" not in shown


class OneCycleSGDLit(LitModel):
    """OneCycleLR cycles SGD's momentum too: it writes its highest, 0.95, into the group at the start
    of the warm-up, and pairs the peak LR with its lowest, 0.85."""

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=1000)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def test_a_one_cycle_schedule_pairs_its_peak_lr_with_its_lowest_momentum_everywhere():
    torch.manual_seed(0)
    report = check(OneCycleSGDLit(zoo.mlp()), zoo.blobs(), device="cpu", only=["update_ratio"])
    assert "SGD (lr=0.05, momentum=0.85," in " ".join(report.notes)
    assert report.result("update_ratio").metrics["momentum"] == pytest.approx(0.85)
