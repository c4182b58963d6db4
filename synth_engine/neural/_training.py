"""The training loop: AdamW, a validation split, early stopping, a time budget, the best weights kept.

Fitting is deterministic on a given device and thread count: the weights' initialisation, the split and the
batch order all come from fixed seeds. Only a time budget that cuts training short can make two fits differ
(a slower machine stops earlier).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from synth_engine.neural._network import ARNet, nll

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    """How one fit trains (validated by the model before it gets here)."""

    max_epochs: int
    time_budget_s: float
    batch_size: int
    learning_rate: float
    weight_decay: float
    patience: int
    validation_share: float
    seed: int


def auto_batch_size(rows: int, device: torch.device) -> int:
    """A batch size from the row count and device: ~25+ steps an epoch, larger batches on a GPU."""
    cap = 16_384 if device.type == "cuda" else 2048
    size = 2 ** round(math.log2(max(rows / 25.0, 1.0)))
    return int(min(cap, max(64, size)))


def autocast(device: torch.device) -> contextlib.AbstractContextManager[object]:
    """bf16 mixed precision on CUDA; nothing on CPU (bf16 matrix products are slower than fp32 there)."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _batches(rows: int, size: int, gen: torch.Generator, device: torch.device) -> Iterator[torch.Tensor]:
    order = torch.randperm(rows, generator=gen).to(device)
    for start in range(0, rows, size):
        yield order[start : start + size]


def train_private(
    net: ARNet,
    ctx: torch.Tensor,
    tgt: torch.Tensor,
    settings: TrainSettings,
    device: torch.device,
    *,
    noise_multiplier: float,
    max_grad_norm: float,
    epochs: int,
) -> dict[str, object]:
    """DP-SGD with Opacus: Poisson-sampled batches (rate ``batch_size / rows``), each row's gradient clipped to
    ``max_grad_norm``, Gaussian noise of ``noise_multiplier * max_grad_norm`` on their sum, for ``epochs`` passes.

    Nothing else reads the rows: no validation split and no early stopping (both would be data-dependent choices
    outside the budget); the last weights are kept. The time budget may end training early (it does not depend on
    the data); the report's ``steps`` are what the accountant charges. The rate and steps are in the report.
    """
    from opacus import GradSampleModule
    from opacus.data_loader import DPDataLoader
    from opacus.optimizers import DPOptimizer

    started = time.perf_counter()
    rows = tgt.shape[0]
    gen = torch.Generator().manual_seed(settings.seed)
    batches_per_epoch = max(1, math.ceil(rows / settings.batch_size))
    rate = 1.0 / batches_per_epoch
    loader = DPDataLoader(
        torch.utils.data.TensorDataset(ctx, tgt), sample_rate=rate, generator=gen
    )
    private = GradSampleModule(net.to(device), loss_reduction="mean")
    opt = DPOptimizer(
        torch.optim.AdamW(private.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay),
        noise_multiplier=noise_multiplier,
        max_grad_norm=max_grad_norm,
        expected_batch_size=max(1, round(rows * rate)),
        loss_reduction="mean",
        generator=torch.Generator(device=device).manual_seed(settings.seed + 1),
    )
    deadline = started + settings.time_budget_s
    steps, epoch, stopped_by, total, seen = 0, 0, "max_epochs", 0.0, 0
    private.train()
    while epoch < epochs and stopped_by == "max_epochs":
        total, seen = 0.0, 0
        for c, t in loader:
            steps += 1  # an empty Poisson batch is a step too: its noise is released
            opt.zero_grad(set_to_none=True)
            if t.shape[0]:
                c, t = c.to(device), t.to(device)
                loss = nll(private(c, t), t)
                torch.autograd.backward(loss)
                total += float(loss.detach()) * t.shape[0]
                seen += t.shape[0]
            opt.step()
            if time.perf_counter() > deadline:
                stopped_by = "time_budget"
                break
        epoch += 1
        log.debug("DP epoch %d: train %.4f over %d rows", epoch, total / max(seen, 1), seen)
    net = private.to_standard_module() if hasattr(private, "to_standard_module") else private._module
    net.eval()
    return {
        "epochs": epoch,
        "steps": steps,
        "sampling_rate": rate,
        "noise_multiplier": noise_multiplier,
        "max_grad_norm": max_grad_norm,
        "train_loss": total / max(seen, 1),
        "seconds": round(time.perf_counter() - started, 3),
        "device": str(device),
        "stopped_by": stopped_by,
        "rows": int(rows),
        "validation_rows": 0,
        "batch_size": settings.batch_size,
        "params": int(sum(p.numel() for p in net.parameters())),
        "threads": torch.get_num_threads(),
    }


def train(
    net: ARNet, ctx: torch.Tensor, tgt: torch.Tensor, settings: TrainSettings, device: torch.device
) -> dict[str, object]:
    """Train ``net`` in place on tokens ``ctx`` ``(rows, Kc)`` and ``tgt`` ``(rows, K)``; returns the report.

    The best weights on the validation split (or, with too few rows for one, on the training loss) are loaded
    back into ``net`` before returning.
    """
    started = time.perf_counter()
    rows = tgt.shape[0]
    rng = np.random.Generator(np.random.PCG64(settings.seed))
    n_val = round(rows * settings.validation_share) if rows >= 50 else 0
    perm = torch.from_numpy(rng.permutation(rows))
    val_idx, train_idx = perm[:n_val].to(device), perm[n_val:].to(device)
    ctx, tgt = ctx.to(device), tgt.to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    gen = torch.Generator().manual_seed(settings.seed)
    best_loss, best_state, best_epoch = math.inf, copy.deepcopy(net.state_dict()), 0
    stale, epoch, stopped_by, lr = 0, 0, "max_epochs", settings.learning_rate
    deadline = started + settings.time_budget_s
    out_of_time = False

    def evaluate(index: torch.Tensor) -> float:
        net.eval()
        total = 0.0
        with torch.no_grad(), autocast(device):
            for start in range(0, index.shape[0], 16_384):
                i = index[start : start + 16_384]
                total += float(net.loss(ctx[i], tgt[i])) * i.shape[0]
        net.train()
        return total / max(index.shape[0], 1)

    net.train()
    while epoch < settings.max_epochs and not out_of_time:
        seen, train_total = 0, 0.0
        for b in _batches(train_idx.shape[0], settings.batch_size, gen, device):
            i = train_idx[b]
            with autocast(device):
                loss = net.loss(ctx[i], tgt[i])
            opt.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            seen += i.shape[0]
            train_total += float(loss.detach()) * i.shape[0]
            if time.perf_counter() > deadline:
                out_of_time = True
                break
        epoch += 1
        val = evaluate(val_idx) if n_val else train_total / max(seen, 1)
        improved = not math.isfinite(best_loss) or val < best_loss - 1e-4 * max(abs(best_loss), 1.0)
        if improved:
            best_loss, best_state, best_epoch, stale = val, copy.deepcopy(net.state_dict()), epoch, 0
        else:
            stale += 1
            # halve the learning rate on a plateau before giving up on it
            lr *= 0.5
            for group in opt.param_groups:
                group["lr"] = lr
        log.debug("epoch %d: train %.4f, validation %.4f (best %.4f)", epoch, train_total / max(seen, 1), val, best_loss)
        if out_of_time:
            stopped_by = "time_budget"
        elif stale >= settings.patience:
            stopped_by = "early_stop"
            break
    net.load_state_dict(best_state)
    net.eval()
    return {
        "epochs": epoch,
        "best_epoch": best_epoch,
        "best_val_loss": float(best_loss),
        "seconds": round(time.perf_counter() - started, 3),
        "device": str(device),
        "stopped_by": stopped_by,
        "rows": int(rows),
        "validation_rows": int(n_val),
        "batch_size": settings.batch_size,
        "params": int(sum(p.numel() for p in net.parameters())),
        "threads": torch.get_num_threads(),
    }
