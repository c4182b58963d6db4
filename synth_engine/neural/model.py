"""An autoregressive neural model of one table in torch, optionally conditioned on its context parent's row.

Encodings (:mod:`synth_engine.neural._codec`): every column keeps the copula's empirical marginal
(:mod:`synth_engine._internal.encoding`) and becomes one or two small tokens: categories one token per kept category
plus one for the merged rare ones (which decode to an observed rare value, as the copula's do); numbers, datetimes,
dates and times a quantile bin of the marginal's uniform score (and optionally a sub-bin), decoded at a uniform position inside
the bin through the marginal's quantile function (values are interpolated, not copied); NULL its own token. The
context's columns are tokenised the same way, with NULL and unknown tokens always reserved.

Network (:mod:`synth_engine.neural._network`): a MADE-style stack of small heads, one per target token, each
predicting its token from the context and the tokens before it. Training (:mod:`synth_engine.neural._training`)
minimises the negative log-likelihood with AdamW, on 90% of the rows, with early stopping on the other 10%, a
time budget and the best epoch's weights kept; on CUDA it runs in bf16 mixed precision.

Determinism: fitting uses fixed seeds (the same data gives the same model on the same device and thread count,
unless the time budget cuts training short); sampling draws every random number from generators seeded by ``seed``
in fixed-size batches, on ``sample_device`` (the CPU by default, so that a seed gives the same rows on any worker).

Differential privacy (``privacy``, or ``epsilon`` for a model on its own): the marginals are learned through the
copula's Gaussian mechanisms (vocabularies thresholded, ranges and histograms noised), so the tokens' bins are DP;
the network is trained by DP-SGD with Opacus (Poisson-sampled batches of at least 256 rows, each row's gradient
clipped, Gaussian noise calibrated so that the steps cost no more than the training's share of the budget at the
budget's Renyi order), for a fixed number of epochs without validation split or early stopping. The DP-SGD steps
go to ``privacy_spent_`` with their sampling rate, and the run's accountant composes them with the rest.
"""

from __future__ import annotations

import contextlib
import logging
import math
import pickle
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any, Self

import numpy as np
import pyarrow as pa
import torch

from schemas.errors import ModelError, NotFittedError
from schemas.kinds import Kind
from synth_engine._internal.columns import model_columns, privacy_columns
from synth_engine._internal.encoding import Marginal, column_privacy, fit_marginal
from synth_engine.neural._codec import ColumnCodec, make_codec
from synth_engine.neural._network import ARNet, NetConfig, upgrade_state
from synth_engine.neural._training import TrainSettings, auto_batch_size, autocast, train, train_private
from synth_engine.privacy import NetworkPrivacy, Spend, calibrate_sgd_noise
from synth_engine.protocol import sample_rows

log = logging.getLogger(__name__)

_FIT_SEED = 0x5EED_4E0E
"""Fitting is deterministic: the same data always gives the same model."""

_SAMPLE_BATCH = 65_536
_DP_MIN_BATCH = 256  # DP-SGD's noise on a batch's mean gradient shrinks with the batch: no small batches
"""Rows sampled at a time: memory is bounded by the batch, not by ``n``; fixed, so the output depends only on seed."""

_DEVICES = ("auto", "cpu", "cuda")


DP_NUMERIC_BINS = 16
"""Quantile bins of a number's token under DP-SGD (see :meth:`NeuralTableModel.fit`)."""


class NeuralTableModel:
    """An autoregressive network over a table's learned columns, optionally conditioned on a context.

    Implements :class:`synth_engine.protocol.TableModel`; a drop-in for
    :class:`synth_engine.copula.GaussianCopulaModel` (see the module notes).

    Args:
        kinds: the target's columns to model and their kinds. Columns whose kind is not learned (keys, PII) are
            skipped: they are generated elsewhere and are absent from samples.
        context_kinds: kinds of the context's columns; when None and a context is given, kinds are inferred from
            the Arrow types.
        device: ``"auto"`` (CUDA when available, else the CPU), ``"cpu"`` or ``"cuda"``: where training runs.
        sample_device: where sampling runs (``"cpu"``, ``"cuda"`` or ``"auto"``). The CPU default makes a seed
            give the same rows on every machine; a GPU is faster for millions of rows.
        time_budget_s: seconds training may take; it stops after the step that crosses it and keeps the best
            epoch's weights.
        max_epochs: epochs at most (early stopping usually ends training first).
        batch_size: rows per step; None picks one from the row count and the device.
        learning_rate: AdamW's initial learning rate (halved on each epoch without improvement).
        dp_learning_rate: AdamW's learning rate under DP-SGD (fixed: there is no validation to halve it on;
            noisy steps need a larger one).
        weight_decay: AdamW's weight decay.
        patience: epochs without a better validation loss before training stops.
        numeric_bins: quantile bins of a number (a number with at most this many values gets one token each); under
            DP-SGD at most ``DP_NUMERIC_BINS``.
        hidden: width of each column's head.
        context_hidden: width of the shared layer over the context's columns.
        max_embedding: the largest embedding width of a token.
        numeric_bins: quantile bins of a number (a number with at most this many values gets one token each).
        fine_bins: sub-bins of each quantile bin (a second token; 0 or 1 = none).
        max_categories: categories kept per column; rarer ones are merged into one bucket.
        num_threads: CPU threads torch may use during fit and sample; None = torch's setting (which follows
            ``OMP_NUM_THREADS``, as Ray sets it for a task).
        epsilon: a differential-privacy budget for this model alone, at delta 1e-6: half to the marginals, half to
            DP-SGD. None = off. Ignored when ``privacy`` is given.
        privacy: how the model learns under DP, as part of a run's budget (:class:`synth_engine.privacy.NetworkPrivacy`):
            the marginals through the copula's Gaussian mechanisms (the tokens' bins come from them), then the
            network by DP-SGD with Opacus, calibrated to its share of the budget. None = off.

    Attributes:
        marginals_: the target's marginals, in output order.
        context_marginals_: the context's marginals (empty without a context).
        codecs_: the target's token codecs, parallel to ``marginals_``.
        context_codecs_: the context's token codecs.
        schema_: the Arrow schema of samples (the fitted target's columns and types).
        n_rows_: rows used for fitting.
        train_report_: how training went: epochs, best_epoch, best_val_loss, seconds, device, stopped_by
            (``"early_stop"``, ``"time_budget"`` or ``"max_epochs"``), rows, validation_rows, batch_size, params,
            threads.
        privacy_spent_: the mechanisms the fit released (empty without DP): the marginals' Gaussian releases and
            the DP-SGD steps (``model.network``, with their sampling rate).
    """

    def __init__(
        self,
        kinds: Mapping[str, Kind],
        context_kinds: Mapping[str, Kind] | None = None,
        *,
        device: str = "auto",
        sample_device: str = "cpu",
        time_budget_s: float = 300.0,
        max_epochs: int = 100,
        batch_size: int | None = None,
        learning_rate: float = 3e-3,
        dp_learning_rate: float = 2e-2,
        weight_decay: float = 1e-5,
        patience: int = 3,
        validation_share: float = 0.1,
        hidden: int = 64,
        context_hidden: int = 64,
        max_embedding: int = 16,
        numeric_bins: int = 64,
        fine_bins: int = 0,
        max_categories: int = 100,
        num_threads: int | None = None,
        epsilon: float | None = None,
        privacy: NetworkPrivacy | None = None,
    ) -> None:
        self.kinds = kinds
        self.context_kinds = context_kinds
        self.device = device
        self.sample_device = sample_device
        self.time_budget_s = time_budget_s
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.dp_learning_rate = dp_learning_rate
        self.weight_decay = weight_decay
        self.patience = patience
        self.validation_share = validation_share
        self.hidden = hidden
        self.context_hidden = context_hidden
        self.max_embedding = max_embedding
        self.numeric_bins = numeric_bins
        self.fine_bins = fine_bins
        self.max_categories = max_categories
        self.num_threads = num_threads
        self.epsilon = epsilon
        self.privacy = privacy

    # ------------------------------------------------------------------ fit
    def fit(self, target: pa.Table, *, context: pa.Table | None = None) -> Self:
        """Learn marginals and the network from ``target`` (and ``context``: one parent row per target row).

        Raises:
            ModelError: on a bad parameter, a missing column, a kind that does not fit a column's type, a context
                whose row count differs from the target's, or a CUDA device that is not available.
        """
        self._check_params()
        target_cols, context_cols = model_columns(self.kinds, self.context_kinds, target, context)
        device = _resolve_device(self.device, "device")
        rng = np.random.Generator(np.random.PCG64(_FIT_SEED))
        priv = self.privacy
        if priv is None and self.epsilon is not None:
            priv = NetworkPrivacy.from_epsilon(self.epsilon)
        dps, spend = column_privacy(priv, privacy_columns(context_cols, target_cols))
        self.privacy_spent_: list[Spend] = [spend] if spend is not None else []

        def learn(name: str, kind: Kind, column: pa.ChunkedArray, table: str) -> Marginal:
            # context=False: a context column is tokenised, not one-hot encoded, so it keeps its rare bucket
            return fit_marginal(
                name, kind, column, max_categories=self.max_categories, rng=rng, table=table,
                dp=dps.get((table, name)), one_hot=False,
            )

        self.context_marginals_: list[Marginal] = []
        if context is not None:
            self.context_marginals_ = [learn(c, k, context[c], "context") for c, k in context_cols.items()]
        self.marginals_: list[Marginal] = [learn(c, k, target[c], "target") for c, k in target_cols.items()]
        fine = self.fine_bins if self.fine_bins > 1 else 0
        # Under DP-SGD every output class shares the same clipped, noised gradient: fewer classes per number keep
        # more signal per class (on two correlated normals at epsilon 1, 16 bins learn r = 0.61-0.71 where 64 learn
        # 0.14-0.35, for a real 0.8); the numbers stay continuous, drawn within their bin from the DP marginal.
        coarse = min(self.numeric_bins, DP_NUMERIC_BINS) if priv is not None else self.numeric_bins
        self.context_codecs_: list[ColumnCodec] = [
            make_codec(m, context=True, coarse=coarse, fine=fine) for m in self.context_marginals_
        ]
        self.codecs_: list[ColumnCodec] = [
            make_codec(m, context=False, coarse=coarse, fine=fine) for m in self.marginals_
        ]
        tgt = _tokens(self.codecs_, target, rng)
        ctx = _tokens(self.context_codecs_, context, rng) if context is not None else _no_tokens(target.num_rows)
        self.schema_ = pa.schema([target.schema.field(m.name) for m in self.marginals_])
        self.n_rows_ = target.num_rows
        cfg = NetConfig(
            context_sizes=tuple(s for c in self.context_codecs_ for s in c.sizes),
            target_sizes=tuple(s for c in self.codecs_ for s in c.sizes),
            hidden=self.hidden,
            context_hidden=self.context_hidden,
            max_embedding=self.max_embedding,
        )
        with _threads(self.num_threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(_FIT_SEED)
            self.net_config_ = cfg
            self._net: ARNet | None = None
            if cfg.target_sizes and target.num_rows:
                net = ARNet(cfg).to(device)
                settings = TrainSettings(
                    max_epochs=self.max_epochs,
                    time_budget_s=float(self.time_budget_s),
                    batch_size=self.batch_size or auto_batch_size(target.num_rows, device),
                    learning_rate=self.learning_rate,
                    weight_decay=self.weight_decay,
                    patience=self.patience,
                    validation_share=self.validation_share,
                    seed=_FIT_SEED,
                )
                if priv is not None and priv.network is not None:
                    report = self._train_private(net, ctx, tgt, settings, device, priv)
                else:
                    report = train(net, torch.from_numpy(ctx), torch.from_numpy(tgt), settings, device)
                self._net = net.cpu()
            else:  # nothing to learn: every column is empty, or there are no rows
                report = {"epochs": 0, "best_val_loss": float("nan"), "seconds": 0.0, "device": str(device),
                          "stopped_by": "max_epochs", "rows": target.num_rows, "params": 0}
        self.train_report_: dict[str, Any] = report
        log.debug(
            "fitted a neural model on %d rows: %d target columns (%d tokens), %d context columns: %s",
            target.num_rows, len(self.marginals_), len(cfg.target_sizes), len(self.context_marginals_), report,
        )
        return self

    def _train_private(
        self,
        net: ARNet,
        ctx: np.ndarray,
        tgt: np.ndarray,
        settings: TrainSettings,
        device: torch.device,
        priv: NetworkPrivacy,
    ) -> dict[str, Any]:
        """DP-SGD (see :func:`synth_engine.neural._training.train_private`), its noise calibrated to the share."""
        rows = tgt.shape[0]
        batch = self.batch_size or max(_DP_MIN_BATCH, auto_batch_size(rows, device))
        settings = replace(settings, batch_size=min(batch, rows), learning_rate=self.dp_learning_rate)
        per_epoch = max(1, math.ceil(rows / settings.batch_size))
        assert priv.network is not None
        sigma = calibrate_sgd_noise(priv.network, 1.0 / per_epoch, per_epoch * priv.epochs, priv.order)
        report = train_private(
            net, torch.from_numpy(ctx), torch.from_numpy(tgt), settings, device,
            noise_multiplier=sigma, max_grad_norm=priv.max_grad_norm, epochs=priv.epochs,
        )
        steps = int(report["steps"])  # type: ignore[call-overload]
        if steps:
            self.privacy_spent_.append(
                Spend(priv.table, f"{priv.prefix}.network", sigma, steps, sampling_rate=1.0 / per_epoch)
            )
        return report

    def _check_params(self) -> None:
        if self.epsilon is not None and not self.epsilon > 0:
            raise ModelError(f"epsilon must be None or a number > 0, got {self.epsilon!r}")
        for what, device in (("device", self.device), ("sample_device", self.sample_device)):
            if device not in _DEVICES:
                raise ModelError(f"{what} must be one of {', '.join(_DEVICES)}, got {device!r}")
        positive_ints = {
            "max_epochs": self.max_epochs, "patience": self.patience, "hidden": self.hidden,
            "max_embedding": self.max_embedding,
        }
        for name, value in positive_ints.items():
            if not isinstance(value, int) or value < 1:
                raise ModelError(f"{name} must be an integer >= 1, got {value!r}")
        for name, value in (("context_hidden", self.context_hidden), ("fine_bins", self.fine_bins)):
            if not isinstance(value, int) or value < 0:
                raise ModelError(f"{name} must be an integer >= 0, got {value!r}")
        if not isinstance(self.numeric_bins, int) or self.numeric_bins < 2:
            raise ModelError(f"numeric_bins must be an integer >= 2, got {self.numeric_bins!r}")
        if not isinstance(self.max_categories, int) or self.max_categories < 2:
            raise ModelError(f"max_categories must be an integer >= 2, got {self.max_categories!r}")
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise ModelError(f"batch_size must be None or an integer >= 1, got {self.batch_size!r}")
        if self.num_threads is not None and (not isinstance(self.num_threads, int) or self.num_threads < 1):
            raise ModelError(f"num_threads must be None or an integer >= 1, got {self.num_threads!r}")
        if not self.time_budget_s > 0:
            raise ModelError(f"time_budget_s must be a number > 0, got {self.time_budget_s!r}")
        if not self.learning_rate > 0 or not self.weight_decay >= 0:
            raise ModelError(
                f"learning_rate must be > 0 and weight_decay >= 0, got {self.learning_rate!r} and {self.weight_decay!r}"
            )
        if not 0.0 <= self.validation_share < 1.0:
            raise ModelError(f"validation_share must be in [0, 1), got {self.validation_share!r}")

    # --------------------------------------------------------------- sample
    def sample(self, *, n: int | None = None, context: pa.Table | None = None, seed: int) -> pa.Table:
        """Sample synthetic target rows.

        Args:
            n: rows to sample without a context (ignored when equal to the context's row count).
            context: the parents' rows, one per row to sample; output row ``i`` is conditioned on context row ``i``.
            seed: the random seed; the same seed gives the same output (on the same ``sample_device``).

        Returns:
            A table with the fitted target's columns and exact Arrow types.

        Raises:
            NotFittedError: when called before :meth:`fit`.
            ModelError: when neither ``n`` nor ``context`` is given, when they disagree, or when the context lacks
                a column the model was fitted on. A model fitted without context columns samples its marginal,
                one row per context row.
        """
        if not hasattr(self, "train_report_"):
            raise NotFittedError("NeuralTableModel.sample was called before fit; call fit(target) first")
        rows = sample_rows(n, context)
        if self.context_marginals_:
            if context is None:
                raise ModelError(
                    "the model was fitted with a context but sample got none; pass context (the parents' rows)"
                )
            missing = [m.name for m in self.context_marginals_ if m.name not in context.column_names]
            if missing:
                raise ModelError(
                    f"the context lacks column(s) {', '.join(map(repr, missing))} that the model was fitted on "
                    f"(context columns: {', '.join(context.column_names)}); pass the parent's generated columns"
                )
        device = _resolve_device(self.sample_device, "sample_device")
        rng = np.random.Generator(np.random.PCG64(seed))
        gen = torch.Generator().manual_seed(int(seed) & ((1 << 63) - 1))
        with _threads(self.num_threads), torch.inference_mode():
            net = self._net.to(device) if self._net is not None else None
            batches = [
                self._sample_batch(net, stop - start, context.slice(start, stop - start) if context is not None else None,
                                   rng, gen, device)
                for start, stop in _spans(rows)
            ]
        return pa.concat_tables(batches) if len(batches) > 1 else batches[0]

    def _sample_batch(
        self,
        net: ARNet | None,
        rows: int,
        context: pa.Table | None,
        rng: np.random.Generator,
        gen: torch.Generator,
        device: torch.device,
    ) -> pa.Table:
        k = len(self.net_config_.target_sizes)
        tokens = np.zeros((rows, k), dtype=np.int64)
        if net is not None and rows:
            ctx = _tokens(self.context_codecs_, context, rng) if self.context_codecs_ else _no_tokens(rows)
            uniforms = torch.rand(rows, k, generator=gen, dtype=torch.float64).float()
            with autocast(device):
                out = net.sample(torch.from_numpy(ctx).to(device), uniforms.to(device))
            tokens = out.cpu().numpy()
        arrays = []
        col = 0
        for codec in self.codecs_:
            width = len(codec.sizes)
            arrays.append(codec.decode(tokens[:, col : col + width], rng))
            col += width
        return pa.Table.from_arrays(arrays, schema=self.schema_)

    # ---------------------------------------------------------- persistence
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        net = state.pop("_net", None)
        if net is not None:
            state["_net_state"] = {k: v.detach().cpu() for k, v in net.state_dict().items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weights = state.pop("_net_state", None)
        self.__dict__.update(state)
        if "net_config_" in state:
            self._net = None
            if weights is not None:
                with torch.random.fork_rng(devices=[]):
                    net = ARNet(self.net_config_)
                net.load_state_dict(upgrade_state(weights))
                self._net = net.eval()

    def to_bytes(self) -> bytes:
        """The fitted model as bytes (pickle; weights as a CPU state dict), for the model store."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, data: bytes) -> NeuralTableModel:
        """A model from :meth:`to_bytes` output, on the CPU. Only load bytes you wrote: this is pickle."""
        model = pickle.loads(data)
        if not isinstance(model, cls):
            raise ModelError(f"the bytes hold a {type(model).__name__}, expected a {cls.__name__}")
        return model


def _resolve_device(name: str, what: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"{what}='cuda' but torch sees no CUDA device; use {what}='auto' or 'cpu'")
    return torch.device(name)


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """torch's CPU threads set to ``n`` for the block, restored afterwards."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _tokens(codecs: list[ColumnCodec], table: pa.Table, rng: np.random.Generator) -> np.ndarray:
    parts = [c.encode(table.column(c.marginal.name), rng) for c in codecs]
    return np.hstack(parts) if parts else _no_tokens(table.num_rows)


def _no_tokens(rows: int) -> np.ndarray:
    return np.zeros((rows, 0), dtype=np.int64)


def _spans(rows: int) -> list[tuple[int, int]]:
    return [(s, min(s + _SAMPLE_BATCH, rows)) for s in range(0, max(rows, 1), _SAMPLE_BATCH)]
