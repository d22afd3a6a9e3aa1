"""A small, sound training script (an MLP with dropout and batch norm on synthetic blobs) whose
flags each plant one real training-loop fault, for the loop checks' tests."""

import argparse

import torch
from torch import nn

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--lr", type=float, default=1e-2)
parser.add_argument("--sgd", action="store_true")
parser.add_argument("--log-of-probabilities", action="store_true")
parser.add_argument("--workers", type=int, default=0)
parser.add_argument("--bf16", action="store_true")
parser.add_argument("--compile", action="store_true")
parser.add_argument("--accumulate", type=int, default=1)
parser.add_argument("--no-zero-grad", action="store_true")
parser.add_argument("--eval-mode", action="store_true")
parser.add_argument("--dropout", type=float, default=0.1)
parser.add_argument("--freeze-backbone", action="store_true")
parser.add_argument("--freeze-by-name", action="store_true")
parser.add_argument("--step-lr-per-batch", action="store_true")
parser.add_argument("--cosine", action="store_true")
parser.add_argument("--cosine-in-epochs", action="store_true")
parser.add_argument("--lambda-lr-twice", action="store_true")
parser.add_argument("--loss-from-item", action="store_true")
parser.add_argument("--clip", type=float, default=0.0)
parser.add_argument("--rebuild-model", action="store_true")
parser.add_argument("--shuffle-labels", action="store_true")
args = parser.parse_args()

torch.manual_seed(0)
centers = torch.randn(4, 16) * 3
labels = torch.randint(0, 4, (512,))
features = centers[labels] + torch.randn(512, 16)
if args.shuffle_labels:
    labels = labels[torch.randperm(512)]
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(features, labels), batch_size=32, shuffle=True, num_workers=args.workers)


def build():
    return nn.Sequential(
        nn.Linear(16, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(args.dropout),
        nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4),
    )


model = build()
if args.freeze_backbone:
    for p in model[:2].parameters():
        p.requires_grad = False
    model[1].eval()
if args.freeze_by_name:  # meant to train only the middle layer "4.", but the filter also freezes the classifier "6."
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith("4.")
params = [p for p in model.parameters() if p.requires_grad]
optimizer = torch.optim.SGD(params, lr=args.lr, momentum=0.9) if args.sgd else torch.optim.Adam(params, lr=args.lr)
if args.rebuild_model:
    model = build()
if args.compile:
    model = torch.compile(model)
steps_per_epoch = len(loader)
scheduler = None
if args.step_lr_per_batch:
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.5)
if args.cosine:
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * steps_per_epoch)
if args.cosine_in_epochs:  # T_max in epochs, stepped per batch
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
if args.lambda_lr_twice:  # the function returns the LR instead of a factor: LR x LR
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: args.lr * 0.999**step)
criterion = nn.CrossEntropyLoss()

for epoch in range(args.epochs):
    model.train()
    if args.freeze_backbone:
        model[1].eval()
    if args.eval_mode:
        model.eval()
    for i, (x, y) in enumerate(loader):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            out = model(x)
        if args.log_of_probabilities:  # NLL on log(softmax) computed by hand: log(0) once a probability underflows
            loss = nn.functional.nll_loss(torch.log(torch.softmax(out.float() * 1e3, dim=1)), y)
        else:
            loss = criterion(out.float(), y)
        loss = loss / args.accumulate
        if args.loss_from_item:  # the graph is cut: nothing reaches the model
            loss = torch.tensor(loss.item(), requires_grad=True)
        loss.backward()
        if (i + 1) % args.accumulate:
            continue
        if args.clip:
            nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        if not args.no_zero_grad:
            optimizer.zero_grad()
        if scheduler is not None:
            scheduler.step()
    print(f"epoch {epoch} loss {loss.item():.3f}")
