"""A neural table model in torch: an autoregressive network over tokenised columns (see :mod:`.model`)."""

from synth_engine.neural.model import NeuralTableModel

__all__ = ["NeuralTableModel"]
