"""The run configuration: one typed file (YAML or TOML), validated in full before any engine starts.

Precedence, lowest first: defaults, the file, ``SYNTHDB__SECTION__KEY`` environment variables, command-line flags.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from schemas.errors import ConfigError
from schemas.kinds import Kind


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SourceConfig(_Section):
    """Where the real data comes from: a SQLAlchemy URL, or a folder of Parquet/CSV files."""

    url: str | None = None
    db_schema: str | None = None
    schema_file: Path | None = Field(default=None, description="an edited schema YAML to use instead of inspecting")
    batch_rows: int = Field(default=65_536, ge=1, description="rows per Arrow batch when reading")
    orphans: Literal["auto", "null", "drop", "fail"] = Field(
        default="auto",
        description=(
            "what extraction does with source rows whose foreign key points at no parent row: 'null' sets the "
            "key to NULL (its columns must be nullable), 'drop' removes the rows (and rows that then lose their "
            "own parent), 'fail' stops the run; 'auto' is 'null' for a nullable key and 'fail' otherwise. "
            "Every case is counted per foreign key, logged and recorded in the manifest"
        ),
    )


class TargetConfig(_Section):
    """Where the synthetic data goes: a SQLAlchemy URL, or a folder for Parquet output."""

    url: str | None = None
    db_schema: str | None = None
    if_exists: Literal["replace", "fail"] = "replace"


class ColumnOverride(_Section):
    kind: Kind | None = None
    excluded: bool | None = None
    mode: Literal["synthesize", "keep"] | None = Field(
        default=None,
        description=(
            "'keep' copies the column's real values (public by your choice; not a key column) and conditions the "
            "table's synthesized columns on them; 'synthesize' (the default) generates it"
        ),
    )


class TablesConfig(_Section):
    include: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)
    columns: dict[str, ColumnOverride] = Field(
        default_factory=dict, description="overrides keyed by 'table.column'"
    )
    mode: dict[str, Literal["synthesize", "keep", "subset"]] = Field(
        default_factory=dict,
        description=(
            "per table: 'keep' copies its real rows as they are (a public lookup table; every table it references "
            "must be kept too), 'subset' copies a referentially closed subset of its real rows (seeded by "
            "generation.tables.<t>.share or rows), 'synthesize' (the default) generates it. Overrides the schema "
            "file's mode"
        ),
    )

    @field_validator("columns")
    @classmethod
    def _dotted(cls, value: dict[str, ColumnOverride]) -> dict[str, ColumnOverride]:
        for key in value:
            if "." not in key:
                raise ValueError(f"column override {key!r} must be written 'table.column'")
        return value


ModelChoice = Literal["copula", "neural", "auto"]


class TableTraining(_Section):
    """One table's training settings (the others keep the global ones)."""

    model: ModelChoice | None = Field(default=None, description="this table's model; None = training.model")
    time_budget_s: float | None = Field(default=None, gt=0.0, description="this table's neural training budget")


class TrainingConfig(_Section):
    model: ModelChoice = Field(
        default="copula",
        description=(
            "'copula' (a Gaussian copula: fast, works under differential privacy), 'neural' (an autoregressive "
            "network in torch, on a GPU where the cluster has one) or 'auto': neural for a table large enough to "
            "gain from it when its training fits the time budget on the hardware at hand, copula otherwise; each "
            "table's choice and the reason are logged and recorded in the manifest"
        ),
    )
    time_budget_s: float = Field(
        default=600.0, gt=0.0, description="seconds a neural model may train per table (it keeps its best epoch)"
    )
    tables: dict[str, TableTraining] = Field(default_factory=dict, description="per-table overrides")
    max_rows: int | None = Field(default=200_000, ge=1, description="row cap per table for training (sampled)")
    holdout: float = Field(default=0.10, ge=0.0, lt=1.0, description="share of root entities held out")


class TableGeneration(_Section):
    """One table's generation settings."""

    scale: float | None = Field(
        default=None,
        gt=0.0,
        description=(
            "this table's own factor, on top of generation.scale: a root table's rows, a child's children per "
            "parent (its own children follow it)"
        ),
    )
    share: float | None = Field(
        default=None, gt=0.0, le=1.0, description="subset: this share of a root table's rows (children follow)"
    )
    rows: int | None = Field(default=None, ge=1, description="subset: at most this many rows of a root table")


class GenerationConfig(_Section):
    scale: float = Field(default=1.0, gt=0.0)
    rebalance: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description=(
            "per 'table.column' (a learned categorical or boolean column): the share of each of its values, e.g. "
            "{'loans.defaulted': {'true': 0.5, 'false': 0.5}}; the rest of each row, and its children, follow the "
            "model. The report shows the shares reached next to the real ones"
        ),
    )
    tables: dict[str, TableGeneration] = Field(
        default_factory=dict,
        description=(
            "per table: its own scale, or a subset of a root table (share or rows), whose children, and the rows "
            "that reference it, follow: the result is referentially closed by construction"
        ),
    )
    seed: int | Literal["auto"] = Field(
        default=0,
        description=(
            "the seed of every random draw: the same seed, source and configuration give the same output. "
            "'auto' draws a new seed per run and records it in the manifest, so each run differs and any run "
            "can be rebuilt exactly with --seed"
        ),
    )
    shard_rows: int = Field(default=100_000, ge=1, description="target rows per generation shard (one Ray task)")

    @field_validator("rebalance")
    @classmethod
    def _shares(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for key, shares in value.items():
            if key.count(".") < 1:
                raise ValueError(f"rebalance key {key!r} must be written 'table.column'")
            if not shares or any(s < 0 for s in shares.values()) or abs(sum(shares.values()) - 1.0) > 1e-6:
                raise ValueError(f"rebalance of {key!r}: shares must be >= 0 and sum to 1, got {shares}")
        return {k: {str(v): float(s) for v, s in shares.items()} for k, shares in value.items()}

    @property
    def fixed_seed(self) -> int:
        """The seed as a number (``auto`` is drawn once per run by :func:`resolve_seed`, before any stage)."""
        if self.seed == "auto":
            raise ConfigError("generation.seed is 'auto': the run draws it first (schemas.config.resolve_seed)")
        return self.seed
    block_rows: int = Field(
        default=8_192, ge=16, description="rows per random block; output depends on it, never on the shard count"
    )


class RayConfig(_Section):
    address: str | None = None
    num_cpus: int | None = Field(default=None, ge=1)
    gpus: Literal["auto", "never"] = "auto"
    max_retries: int = Field(
        default=3,
        ge=0,
        description=(
            "how many times a train or generate task is rerun after its worker is lost (killed, out of memory, a "
            "node gone) or a retryable error (a dropped connection); other errors fail at once. 0: never"
        ),
    )


class SparkConfig(_Section):
    master: str = "local[2]"
    conf: dict[str, str] = Field(default_factory=dict)
    jars: list[Path] = Field(default_factory=list, description="extra JDBC driver jars, by path")
    java_home: Path | None = None


class ValidationConfig(_Section):
    enabled: bool = True
    fail_on_profile: bool = Field(default=False, description="fail the run on value-set / range expectations too")


PRIVACY_STATISTICS = (
    "row_count",
    "null_shares",
    "model.marginals",
    "model.correlation",
    "model.network",
    "children_per_parent",
    "cardinality.marginals",
    "cardinality.correlation",
    "indegree",
    "member_grid",
    "key_formats",
    "pii_formats",
    "sequences",
)
"""The statistics a table learns under DP (see :mod:`synth_engine.privacy`): each gets a share of its budget."""


class TablePrivacy(_Section):
    """One table's part of the privacy budget."""

    epsilon: float | None = Field(
        default=None, gt=0.0, description="this table's epsilon; the others share what is left"
    )
    weight: float = Field(default=1.0, gt=0.0, description="relative share among the tables without an epsilon")
    shares: dict[str, float] = Field(
        default_factory=dict, description="share of the table's budget per statistic (the rest keep their defaults)"
    )

    @field_validator("shares")
    @classmethod
    def _known_statistics(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(PRIVACY_STATISTICS))
        if unknown:
            raise ValueError(f"unknown statistic(s) {', '.join(unknown)}; choose from {', '.join(PRIVACY_STATISTICS)}")
        negative = sorted(k for k, v in value.items() if v < 0)
        if negative:
            raise ValueError(f"shares must be >= 0; {', '.join(negative)} are negative")
        return value


class PrivacyConfig(_Section):
    """Differential privacy: one budget over every statistic learned, accounted by one RDP accountant.

    ``public`` declares what the user holds to be public, computed exactly and not charged: a whole table
    (``airlines``), one of its statistics (``weather.row_count``, see :data:`PRIVACY_STATISTICS`) or a column's
    marginal (``flights.year``: its NULL share, vocabulary or range).
    """

    epsilon: float | None = Field(default=None, gt=0.0, description="differential privacy budget; None = off")
    delta: float = Field(default=1e-6, gt=0.0, lt=1.0, description="differential privacy delta")
    tables: dict[str, TablePrivacy] = Field(default_factory=dict, description="per-table allocation overrides")
    public: list[str] = Field(
        default_factory=list, description="'table', 'table.<statistic>' or 'table.<column>' declared public"
    )
    pii_locale: str = "en_US"

    @field_validator("public")
    @classmethod
    def _dotted_public(cls, value: list[str]) -> list[str]:
        for item in value:
            if not item or item.startswith(".") or item.endswith("."):
                raise ValueError(f"public entry {item!r} must be 'table', 'table.<statistic>' or 'table.<column>'")
        return value


REPORT_THRESHOLDS: dict[str, float] = {
    # scores in [0, 1] where higher is better: the report warns below these
    "overall": 0.7,
    "column_shapes": 0.75,
    "column_pair_trends": 0.7,
    "cardinality": 0.7,
    "intertable_trends": 0.5,
    "detection": 0.3,
    "utility_ratio": 0.8,
    # privacy measures where lower is better: the report warns above these
    # DCR share: 0.5 + f / 2 for a generator copying a share f of its rows (chance rescaled to 0.5)
    "dcr_share": 0.6,
    # membership-inference attack AUC: 0.5 is a coin toss, 1 recognises every training row
    "mia_auc": 0.6,
    "exact_copies": 0.01,
    # the worst key-like column: share of its synthetic values that are real training values, beyond the
    # holdout's own share and chance (integer keys generated 1..n aside: equal to real keys by construction)
    "column_copies": 0.05,
}
"""Default pass/warn thresholds of the report's headline scores (see :mod:`pipelines.stages.report`)."""


class ReportConfig(_Section):
    enabled: bool = True
    sample_rows: int = Field(default=20_000, ge=100)
    target_column: str | None = Field(default=None, description="'table.column' for the utility metric")
    thresholds: dict[str, float] = Field(
        default_factory=lambda: dict(REPORT_THRESHOLDS),
        description="pass/warn threshold per headline score; the ones not given keep their defaults",
    )

    @field_validator("thresholds")
    @classmethod
    def _known_thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(REPORT_THRESHOLDS))
        if unknown:
            raise ValueError(
                f"unknown headline score(s) {', '.join(unknown)}; choose from {', '.join(REPORT_THRESHOLDS)}"
            )
        return {**REPORT_THRESHOLDS, **value}


class RunConfig(_Section):
    """The whole run configuration."""

    source: SourceConfig = Field(default_factory=SourceConfig)
    target: TargetConfig = Field(default_factory=TargetConfig)
    tables: TablesConfig = Field(default_factory=TablesConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    runs_dir: Path = Path("runs")


ENV_PREFIX = "SYNTHDB__"


def resolve_seed(config: RunConfig) -> RunConfig:
    """The configuration with ``generation.seed: auto`` replaced by a fresh seed (a copy; others as they are)."""
    if config.generation.seed != "auto":
        return config
    import secrets

    generation = config.generation.model_copy(update={"seed": secrets.randbelow(2**31)})
    return config.model_copy(update={"generation": generation})


def load_config(
    path: Path | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> RunConfig:
    """Load and validate the run configuration.

    Args:
        path: a ``.yaml``/``.yml`` or ``.toml`` file, or None for defaults.
        overrides: dotted keys from the command line, e.g. ``{"generation.seed": 7}``; None values are ignored.
        environ: the environment to read ``SYNTHDB__SECTION__KEY`` from (defaults to ``os.environ``).

    Raises:
        ConfigError: listing every invalid setting, with its dotted name, what it must be and what it got.
    """
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_file(Path(path))
    env = os.environ if environ is None else environ
    for key, value in sorted(env.items()):
        if key.startswith(ENV_PREFIX):
            dotted = ".".join(p.lower() for p in key[len(ENV_PREFIX):].split("__"))
            _set_dotted(data, dotted, value)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, dotted, value)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            lines.append(f"{where}: {err['msg']} (got {err.get('input')!r})")
        origin = f" in {path}" if path else ""
        raise ConfigError(f"invalid configuration{origin}:\n" + "\n".join(f"  - {ln}" for ln in lines)) from None


def _read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"configuration file {path} does not exist; check the path")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            import tomllib

            loaded: Any = tomllib.loads(text)
        else:
            from ruamel.yaml import YAML

            loaded = YAML(typ="safe").load(text)
    except Exception as exc:  # the parsers raise many types; all mean "not valid syntax"
        raise ConfigError(f"configuration file {path} is not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"configuration file {path} must hold a mapping of sections, got {type(loaded).__name__}")
    return loaded


_SEGMENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"cannot set {dotted}: {part} is not a section")
        node = nxt
    node[parts[-1]] = value
