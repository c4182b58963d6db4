"""A directory of fitted models, so that a later run can sample without retraining.

Each model is one pickle file ``<root>/<name>.pkl`` holding the model and its metadata; writes are atomic (a
temporary file in the same directory, then a rename), so a crash never leaves a half-written model behind.
Pickle runs code when loading: only load stores that this tool wrote.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

from schemas.errors import ModelError

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.=-]*$")
_FORMAT = 1


class ModelStore:
    """Fitted models by name under one directory.

    Args:
        root: the directory (created on the first save).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, name: str) -> Path:
        """Where the model called ``name`` lives.

        Raises:
            ModelError: when the name could escape the directory or is empty.
        """
        if not _NAME.match(name) or ".." in name:
            raise ModelError(
                f"model name {name!r} is not allowed; use letters, digits, '_', '-', '.' and '=' "
                "(no path separators), e.g. 'flights' or 'flights.cardinality'"
            )
        return self.root / f"{name}.pkl"

    def save(self, name: str, model: object, meta: dict[str, Any]) -> Path:
        """Write ``model`` with ``meta`` atomically and return its path (an existing model is replaced)."""
        target = self.path(name)
        self.root.mkdir(parents=True, exist_ok=True)
        payload = {"format": _FORMAT, "meta": dict(meta), "model": model}
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def exists(self, name: str) -> bool:
        """True when a model called ``name`` was saved."""
        return self.path(name).is_file()

    def load(self, name: str) -> object:
        """The model saved as ``name``.

        Raises:
            ModelError: when there is no such model or the file is not a model store file.
        """
        return self._payload(name)["model"]

    def meta(self, name: str) -> dict[str, Any]:
        """The metadata saved with the model ``name``."""
        meta: dict[str, Any] = self._payload(name)["meta"]
        return meta

    def names(self) -> list[str]:
        """Names of every saved model, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name[: -len(".pkl")] for p in self.root.glob("*.pkl") if not p.name.startswith("."))

    def _payload(self, name: str) -> dict[str, Any]:
        target = self.path(name)
        if not target.is_file():
            known = ", ".join(self.names()) or "none"
            raise ModelError(f"no model {name!r} in the model store {self.root} (models: {known}); train it first")
        try:
            with target.open("rb") as fh:
                payload = pickle.load(fh)
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
            raise ModelError(f"model file {target} cannot be read ({exc}); retrain the model to replace it") from None
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise ModelError(f"{target} is not a synthdb model store file (format {_FORMAT}); retrain to replace it")
        return payload
