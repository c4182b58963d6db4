"""The one exception hierarchy of synthdb.

Every error derives from :class:`SynthdbError`, carries a human message that names the culprit (table, column),
says what was expected, what was found and how to fix it, and pickles cleanly so Ray can carry it across
processes. ``retryable`` tells the orchestrator whether trying again can help (a dropped connection) or not (a bad
schema): a train or generate task that raises a retryable error is rerun, up to ``ray.max_retries`` times
(``pipelines.ray_runtime.stage_task``), and any other error fails the run at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class SynthdbError(Exception):
    """Base class of every synthdb error.

    Attributes:
        message: the full, user-facing message.
        retryable: True when the same call may succeed later (network, lock); False for bad input. Set per
            instance (``ConnectorError(..., retryable=True)``) or per class (:class:`TargetBusy`).
        exit_code: the CLI exit code this error maps to (2 = bad input, 1 = failed run).
    """

    retryable: bool = False
    exit_code: int = 1

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable

    def __reduce__(self) -> tuple[object, ...]:
        # Keep pickling independent of subclass __init__ signatures: rebuild from the message and flags.
        return (_rebuild, (type(self), self.message, self.retryable, self.__dict__.copy()))

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[SynthdbError], message: str, retryable: bool, state: dict[str, object]) -> SynthdbError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    err.message = message
    err.retryable = retryable
    return err


class ConfigError(SynthdbError):
    """The run configuration or a command-line option is invalid. Bad input: exit code 2."""

    exit_code = 2


class SchemaError(SynthdbError):
    """The database schema or the schema file is invalid. Collects every problem and raises once.

    Attributes:
        problems: one line per problem, each naming its table and column.
    """

    exit_code = 2

    def __init__(self, problems: Sequence[str] | str, *, header: str = "The schema has problems") -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            message = f"{header}: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            message = f"{header} ({len(self.problems)}):\n{lines}"
        super().__init__(message)


class PlanError(SchemaError):
    """The foreign-key graph cannot be ordered (for example a cycle with no nullable foreign key)."""


class ConnectorError(SynthdbError):
    """Reading from or writing to a source or target failed (unreachable, wrong credentials, bad URL)."""

    exit_code = 1


class SourceInputError(ConnectorError):
    """The source exists but cannot be used as given (no tables, unknown table). Bad input: exit code 2."""

    exit_code = 2


class TargetInputError(ConnectorError):
    """The target cannot be used as given (unknown dialect, missing database or folder, read-only). Exit code 2."""

    exit_code = 2


class ModelError(SynthdbError):
    """Fitting or sampling a model failed, or a model was sampled before it was fitted."""


class NotFittedError(ModelError):
    """``sample`` was called on a model that has not been fitted."""


class ValidationFailed(SynthdbError):
    """The generated data failed validation (for example a foreign key points nowhere)."""


def collect(problems: Iterable[str], *, header: str = "The schema has problems") -> None:
    """Raise one :class:`SchemaError` listing every problem, or return when there is none."""
    found = list(problems)
    if found:
        raise SchemaError(found, header=header)


class TargetBusy(ConnectorError):
    """Another run holds the target's lock. Exit code 1 and retryable: the same command succeeds once it ends."""

    exit_code = 1
    retryable = True
