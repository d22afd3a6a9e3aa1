"""The watcher inside real trainers: Lightning's Trainer and Hugging Face's Trainer, tiny
random-init models, synthetic data, nothing downloaded."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from nndoctor.watching import WatchStopped

lightning = pytest.importorskip("lightning")
transformers = pytest.importorskip("transformers")


def _blobs(n=512, classes=4, features=8):
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(classes, features, generator=g) * 3
    y = torch.randint(0, classes, (n,), generator=g)
    return centers[y] + torch.randn(n, features, generator=g), y


class Classifier(lightning.LightningModule):
    """Softmax output and the log of its probabilities (seed 003), at a chosen learning rate."""

    def __init__(self, lr: float):
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 4), nn.Softmax(dim=1))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return -torch.log(self(x).gather(1, y[:, None])).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def _fit(lr: float, steps: int, **watch_kwargs):
    from nndoctor.integrations.lightning import NndoctorWatch

    torch.manual_seed(0)
    callback = NndoctorWatch(alerts=False, **watch_kwargs)
    trainer = lightning.Trainer(max_steps=steps, callbacks=[callback], accelerator="cpu", logger=False,
                                enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    module = Classifier(lr)
    trainer.fit(module, DataLoader(TensorDataset(*_blobs()), batch_size=32, shuffle=True))
    return callback, module


def test_lightning_sound_fit_raises_no_event():
    callback, _ = _fit(lr=0.1, steps=120)
    assert callback.watcher.step_index == 120
    # the gradients were judged inside Lightning's closure, once they existed: their usual size is known
    assert callback.watcher.judge.lrs == [(0, 0.1)] and min(callback.watcher.judge._total_base) > 0
    assert callback.report.timeline is not None and callback.watcher.events == ()


def test_lightning_stops_at_the_log_of_0_before_the_update():
    with pytest.raises(WatchStopped):
        _fit(lr=200.0, steps=200, stop_on="fail")


def test_lightning_log_of_0_is_reported():
    callback, _ = _fit(lr=200.0, steps=60)
    codes = {e.code for e in callback.watcher.events}
    assert codes & {"numerics.nonfinite_loss", "pinned_probabilities.wrong_class"}, codes
    assert not callback.watcher.model._forward_hooks  # removed at the end of fit


class Tokens(Dataset):
    def __init__(self, n=256):
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(5, 100, (n, 12), generator=g)
        self.labels = (self.ids[:, 0] % 2).long()  # learnable from the first token

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def _train(tmp_path, lr: float, steps: int, **watch_kwargs):
    from nndoctor.integrations.transformers import NndoctorWatch

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=16, num_labels=2)
    model = transformers.BertForSequenceClassification(config)
    callback = NndoctorWatch(alerts=False, **watch_kwargs)
    args = transformers.TrainingArguments(output_dir=str(tmp_path), max_steps=steps, per_device_train_batch_size=16,
                                          learning_rate=lr, report_to=[], save_strategy="no", logging_strategy="no",
                                          use_cpu=True, disable_tqdm=True, max_grad_norm=0.0)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Tokens(), callbacks=[callback])
    return callback, trainer


def test_transformers_sound_training_raises_no_event(tmp_path):
    callback, trainer = _train(tmp_path, lr=1e-3, steps=60)
    trainer.train()
    assert callback.watcher.step_index == 60
    assert len(callback.watcher.judge.losses) == 60  # the model's own loss, every step
    assert callback.watcher.events == (), [e.line() for e in callback.watcher.events]
    assert callback.report.timeline.steps == 60


def test_transformers_divergence_is_caught(tmp_path):
    callback, trainer = _train(tmp_path, lr=50.0, steps=60)
    trainer.train()
    assert "loss_progress.diverged" in {e.code for e in callback.watcher.events}
    assert callback.report.causes[0].key == "lr_too_high"


def test_transformers_stop_on_fail_stops_before_the_update_and_removes_the_hooks(tmp_path):
    callback, trainer = _train(tmp_path, lr=50.0, steps=60, stop_on="fail", save_last_good=tmp_path / "good.pt")
    with pytest.raises(WatchStopped):
        trainer.train()
    report = callback.report  # closes the watcher
    assert report.timeline.stopped and "loss_progress.diverged" in report.timeline.stopped
    assert callback.watcher.step_index == callback.watcher.stopped.step  # the failing step was not applied
    assert not trainer.model._forward_hooks
    state = torch.load(tmp_path / "good.pt")
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
