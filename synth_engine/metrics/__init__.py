"""Fidelity and privacy of synthetic data against real data, on Arrow tables and bounded samples.

Every score is in [0, 1] with 1 = indistinguishable from the real data, except where a field says otherwise
(an AUC, a share with an ideal of 0.5, a distance). Results are typed dataclasses with ``to_dict()`` for JSON.
"""

from synth_engine.metrics._encode import MetricsError
from synth_engine.metrics.fidelity import (
    FidelityResult,
    TableFidelity,
    UtilityResult,
    evaluate_fidelity,
    utility,
)
from synth_engine.metrics.privacy import PrivacyResult, TablePrivacy, evaluate_privacy

__all__ = [
    "FidelityResult",
    "MetricsError",
    "PrivacyResult",
    "TableFidelity",
    "TablePrivacy",
    "UtilityResult",
    "evaluate_fidelity",
    "evaluate_privacy",
    "utility",
]
