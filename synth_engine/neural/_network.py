"""The autoregressive network: one small head per target sub-token, all computed at once.

Every sub-token ``k`` of the target has a head that sees the context and the sub-tokens before it (MADE-style):

- each sub-token (context and target) has an embedding; the context's embeddings also feed one shared hidden
  layer, so that heads can use interactions between parent columns;
- the first layer of all heads is one masked matrix ``[context | context hidden | target embeddings] -> K x H``:
  head ``k`` only sees target embeddings of sub-tokens ``< k`` (a block-triangular mask), so teacher-forced training
  is a handful of large matrix products whatever the number of columns;
- then per head a residual layer ``H -> H`` and an output layer ``H -> vocabulary``, as batched products over heads.

Sampling runs the heads in order, feeding each sampled token's embedding to the later heads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class NetConfig:
    """The network's shape, enough to rebuild it from a state dict.

    Attributes:
        context_sizes: vocabulary of each context sub-token.
        target_sizes: vocabulary of each target sub-token, in prediction order.
        hidden: width of each head.
        context_hidden: width of the shared context layer (0: none).
        max_embedding: the largest embedding width.
    """

    context_sizes: tuple[int, ...]
    target_sizes: tuple[int, ...]
    hidden: int
    context_hidden: int
    max_embedding: int


def embedding_width(vocabulary: int, cap: int) -> int:
    """An embedding width that grows with the square root of the vocabulary, between 4 and ``cap``."""
    return int(min(cap, max(4, math.ceil(1.5 * math.sqrt(vocabulary)))))


class Heads(nn.Module):
    """Every head's layers: the masked first layer, a residual layer and the output layer, batched over heads.

    It owns parameters only: the mask and the logits' padding are plain tensors (not buffers), moved to the
    inputs' device when first used there, so that Opacus can compute per-row gradients of it (with ``torch.func``,
    which runs a copy of the module on the ``meta`` device) for DP-SGD.
    """

    def __init__(self, din: int, sizes: tuple[int, ...], h: int, mask: torch.Tensor) -> None:
        super().__init__()
        k = len(sizes)
        self.k, self.h = k, h
        self.vmax = max(sizes, default=1)
        self.mask = mask
        self.w1 = nn.Parameter(torch.randn(din, k * h) / math.sqrt(max(din, 1)))
        self.b1 = nn.Parameter(torch.zeros(k * h))
        self.w2 = nn.Parameter(torch.randn(k, h, h) / math.sqrt(h))
        self.b2 = nn.Parameter(torch.zeros(k, h))
        self.w3 = nn.Parameter(torch.randn(k, h, self.vmax) / math.sqrt(h) * 0.5)
        self.b3 = nn.Parameter(torch.zeros(k, self.vmax))
        # logits beyond a head's vocabulary are masked out
        pad = torch.zeros(k, self.vmax)
        for j, v in enumerate(sizes):
            pad[j, v:] = float("-inf")
        self.pad = pad

    def _constants(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mask.device != device:
            self.mask, self.pad = self.mask.to(device), self.pad.to(device)
        return self.mask, self.pad

    def first(self, x: torch.Tensor, cols: slice) -> torch.Tensor:
        """First-layer pre-activations of the heads whose columns are ``cols``."""
        mask, _ = self._constants(x.device)
        return x @ (self.w1[:, cols] * mask[:, cols]) + self.b1[cols]

    def logits(self, first: torch.Tensor, heads: slice) -> torch.Tensor:
        """Logits ``(rows, heads, vmax)`` from first-layer pre-activations ``(rows, heads, h)``."""
        x = F.gelu(first)
        x = x + F.gelu(torch.einsum("bkh,khg->bkg", x, self.w2[heads]) + self.b2[heads])
        out = torch.einsum("bkh,khv->bkv", x, self.w3[heads]) + self.b3[heads]
        _, pad = self._constants(x.device)
        return out.float() + pad[heads]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``(rows, K, vmax)`` of every head from the inputs ``x`` ``(rows, din)``."""
        return self.logits(self.first(x, slice(None)).view(-1, self.k, self.h), slice(None))


class ARNet(nn.Module):
    """The network of :mod:`synth_engine.neural` (see the module notes)."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        k, h = len(cfg.target_sizes), cfg.hidden
        self.k, self.h = k, h
        ctx_widths = [embedding_width(v, cfg.max_embedding) for v in cfg.context_sizes]
        widths = [embedding_width(v, cfg.max_embedding) for v in cfg.target_sizes]
        self.ctx_emb = nn.ModuleList(nn.Embedding(v, w) for v, w in zip(cfg.context_sizes, ctx_widths, strict=True))
        self.tgt_emb = nn.ModuleList(nn.Embedding(v, w) for v, w in zip(cfg.target_sizes, widths, strict=True))
        dc = sum(ctx_widths)
        self.ctx_hidden = nn.Linear(dc, cfg.context_hidden) if dc and cfg.context_hidden else None
        dch = dc + (cfg.context_hidden if self.ctx_hidden is not None else 0)
        self.n_context_inputs = dch
        din = dch + sum(widths)
        # mask[i, k*h:(k+1)*h] = 1 when input i may reach head k: every context input, target sub-tokens before k
        mask = torch.zeros(din, k * h)
        mask[:dch] = 1.0
        starts = [dch + sum(widths[:j]) for j in range(k)]
        for j in range(k):
            mask[starts[j] : starts[j] + widths[j], (j + 1) * h :] = 1.0
        self.starts = starts
        self.widths = widths
        self.heads = Heads(din, cfg.target_sizes, h, mask)

    def _context_inputs(self, ctx: torch.Tensor) -> list[torch.Tensor]:
        parts = [emb(ctx[:, j]) for j, emb in enumerate(self.ctx_emb)]
        if self.ctx_hidden is not None:
            parts.append(F.gelu(self.ctx_hidden(torch.cat(parts, dim=1))))
        return parts

    def forward(self, ctx: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``(rows, K, vmax)`` for context tokens ``ctx`` and target tokens ``tgt``."""
        parts = self._context_inputs(ctx) + [emb(tgt[:, j]) for j, emb in enumerate(self.tgt_emb)]
        x = torch.cat(parts, dim=1) if parts else tgt.new_zeros((tgt.shape[0], 0), dtype=self.heads.w1.dtype)
        return self.heads(x)

    def loss(self, ctx: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood per row (nats), summed over sub-tokens and averaged over rows."""
        return nll(self.forward(ctx, tgt), tgt)

    @torch.no_grad()
    def sample(self, ctx: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
        """Target tokens ``(rows, K)``, head by head; ``uniforms`` ``(rows, K)`` pick each token by inverse CDF."""
        rows = uniforms.shape[0]
        parts = self._context_inputs(ctx)
        heads = self.heads
        x = torch.zeros(rows, heads.w1.shape[0], device=uniforms.device, dtype=heads.w1.dtype)
        if parts:
            x[:, : self.n_context_inputs] = torch.cat(parts, dim=1).to(x.dtype)
        out = torch.zeros(rows, self.k, dtype=torch.long, device=uniforms.device)
        for j in range(self.k):
            first = heads.first(x, slice(j * self.h, (j + 1) * self.h)).view(rows, 1, self.h)
            logits = heads.logits(first, slice(j, j + 1))[:, 0]
            cdf = torch.cumsum(torch.softmax(logits, dim=1), dim=1)
            tok = torch.searchsorted(cdf, uniforms[:, j : j + 1].contiguous() * cdf[:, -1:]).squeeze(1)
            tok = tok.clamp_(max=self.cfg.target_sizes[j] - 1)
            out[:, j] = tok
            x[:, self.starts[j] : self.starts[j] + self.widths[j]] = self.tgt_emb[j](tok).to(x.dtype)
        return out


def nll(logits: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood per row (nats) of teacher-forced ``logits`` ``(rows, K, vmax)``: summed over the
    ``K`` sub-tokens, averaged over rows (a mean over rows, as DP-SGD's per-row clipping expects)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1)) * logits.shape[1]


_OLD_KEYS = ("w1", "b1", "w2", "b2", "w3", "b3")


def upgrade_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict saved before the heads became their own module (``w1`` is now ``heads.w1``)."""
    return {f"heads.{k}" if k in _OLD_KEYS else k: v for k, v in state.items()}
