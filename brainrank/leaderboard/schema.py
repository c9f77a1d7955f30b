"""The leaderboard's tables (SQLAlchemy 2.0).

- ``models``, ``datasets``: what was scored, with the metadata the filters use and the
  content hashes last seen (weights; stimuli and data).
- ``metrics``: one row per metric identifier and parameter set (``config_hash``), with its
  parameters and version.
- ``runs``: provenance of every run: code version and git revision, package versions,
  configuration, seeds, executor (local or a Dask cluster), host, start and end; the seconds
  spent per stage (model building, extraction, scoring, writing, summed over its jobs) and
  the regression fits its scoring made.
- ``scores``: one row per model x dataset x metric configuration x subject x region x
  layer x selection. ``selection`` is ``"layer"`` for per-layer scores and names the
  layer-choice policy (``"max"``, ``"heldout"``, ... any string) for the summary rows.
  Every row carries the content hashes that determine it: weights, stimuli, data and the
  feature-cache key. The unique key is exactly what determines a result, so writes are
  upserts: rerunning never duplicates a score.
- ``neuroid_values``: the per-neuroid values behind a per-layer score (e.g. each voxel's
  r), one float32 blob per score row; the neuroid ids are stored once per distinct list in
  ``neuroid_sets``.
- ``completions``: one row per (model, dataset, metric configuration) whose scores are all
  stored, written in the same transaction as the scores. A resumed run skips what is here
  with the same content hashes.
- ``leases``: one row per (model, dataset, metric configuration) a live run is computing
  now (run, host, process, heartbeat), so two runs on one leaderboard never compute the
  same combination; removed with the completion record (see :meth:`Store.acquire_leases`).
- ``failures``: what went wrong, with the traceback, per run.
- ``meta``: the schema version (see :mod:`brainrank.leaderboard.migrations`).
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 4

SCORE_KEY = (
    "model",
    "dataset",
    "metric",
    "metric_hash",
    "subject",
    "region",
    "layer",
    "selection",
)

COMPLETION_KEY = ("model", "dataset", "metric", "metric_hash")


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class MetaRow(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class ModelRow(Base):
    __tablename__ = "models"
    identifier: Mapped[str] = mapped_column(String(256), primary_key=True)
    source: Mapped[str | None] = mapped_column(String(64))
    architecture: Mapped[str | None] = mapped_column(String(128))
    family: Mapped[str | None] = mapped_column(String(32))
    task: Mapped[str | None] = mapped_column(String(128))
    training_data: Mapped[str | None] = mapped_column(String(128))
    trained: Mapped[bool | None] = mapped_column(Boolean)
    n_params: Mapped[int | None] = mapped_column(BigInteger)
    input_size: Mapped[int | None] = mapped_column(Integer)
    plugin: Mapped[str | None] = mapped_column(String(256))
    details: Mapped[dict | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    # v2
    weights_hash: Mapped[str | None] = mapped_column(String(128))
    # v4: the rest of the taxonomy (brainrank.core.taxonomy)
    training_method: Mapped[str | None] = mapped_column(String(64))
    task_cluster: Mapped[str | None] = mapped_column(String(32))
    imagenet_top1: Mapped[float | None] = mapped_column(Float)


class DatasetRow(Base):
    __tablename__ = "datasets"
    identifier: Mapped[str] = mapped_column(String(256), primary_key=True)
    species: Mapped[str | None] = mapped_column(String(64))
    modality: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str | None] = mapped_column(String(32))
    n_stimuli: Mapped[int | None] = mapped_column(Integer)
    plugin: Mapped[str | None] = mapped_column(String(256))
    details: Mapped[dict | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    # v2
    stimuli_hash: Mapped[str | None] = mapped_column(String(64))
    data_hash: Mapped[str | None] = mapped_column(String(64))


class MetricRow(Base):
    __tablename__ = "metrics"
    __table_args__ = (UniqueConstraint("identifier", "config_hash", name="uq_metric"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identifier: Mapped[str] = mapped_column(String(256))
    config_hash: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(32))
    parameters: Mapped[dict | None] = mapped_column(JSON)
    plugin: Mapped[str | None] = mapped_column(String(256))
    # v4
    #: the parameters of the preset the configuration started from (its identifier built
    #: without parameters): a configuration is named by what differs from them
    defaults: Mapped[dict | None] = mapped_column(JSON)
    #: the summary row the ranking takes (Metric.headline)
    headline: Mapped[str | None] = mapped_column(String(32))
    #: whether its null expectation is 0 (Metric.calibrated); not: ranked only when asked
    calibrated: Mapped[bool | None] = mapped_column(Boolean)


class RunRow(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), default="running")
    code_version: Mapped[str | None] = mapped_column(String(64))
    git_revision: Mapped[str | None] = mapped_column(String(64))
    host: Mapped[str | None] = mapped_column(String(256))
    packages: Mapped[dict | None] = mapped_column(JSON)
    config: Mapped[dict | None] = mapped_column(JSON)
    n_scores: Mapped[int] = mapped_column(Integer, default=0)
    n_failures: Mapped[int] = mapped_column(Integer, default=0)
    # v2
    seeds: Mapped[dict | None] = mapped_column(JSON)
    executor: Mapped[str | None] = mapped_column(String(256))
    n_skipped: Mapped[int | None] = mapped_column(Integer)
    # v3: where the time went, summed over the run's jobs (every worker adds its own)
    seconds_model: Mapped[float | None] = mapped_column(Float)
    seconds_extraction: Mapped[float | None] = mapped_column(Float)
    seconds_scoring: Mapped[float | None] = mapped_column(Float)
    seconds_writing: Mapped[float | None] = mapped_column(Float)
    #: regression fits made by scoring (one target on one layer with one penalty)
    fits: Mapped[int | None] = mapped_column(BigInteger)


class ScoreRow(Base):
    __tablename__ = "scores"
    __table_args__ = (UniqueConstraint(*SCORE_KEY, name="uq_score"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(256), index=True)
    dataset: Mapped[str] = mapped_column(String(256), index=True)
    metric: Mapped[str] = mapped_column(String(256), index=True)
    metric_hash: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(128))
    region: Mapped[str] = mapped_column(String(128))
    layer: Mapped[str] = mapped_column(String(512))
    selection: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float)
    ceiling: Mapped[float | None] = mapped_column(Float)
    normalized: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    n_neuroids: Mapped[int | None] = mapped_column(Integer)
    layer_index: Mapped[int | None] = mapped_column(Integer)
    relative_depth: Mapped[float | None] = mapped_column(Float)
    feature_key: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict | None] = mapped_column(JSON)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    # v2
    weights_hash: Mapped[str | None] = mapped_column(String(128))
    stimuli_hash: Mapped[str | None] = mapped_column(String(64))
    data_hash: Mapped[str | None] = mapped_column(String(64))
    # v4: the ceiling's confidence interval; the chance level of an uncalibrated metric
    ceiling_low: Mapped[float | None] = mapped_column(Float)
    ceiling_high: Mapped[float | None] = mapped_column(Float)
    chance: Mapped[float | None] = mapped_column(Float)
    chance_sd: Mapped[float | None] = mapped_column(Float)


class NeuroidSetRow(Base):
    """A list of neuroid ids, stored once and shared by every score over those neuroids."""

    __tablename__ = "neuroid_sets"
    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
    ids: Mapped[list] = mapped_column(JSON)


class NeuroidValuesRow(Base):
    """The per-neuroid values of one score row: little-endian float32 bytes, aligned with
    the ids of ``neuroid_set`` (NaN where a neuroid has no value)."""

    __tablename__ = "neuroid_values"
    score_id: Mapped[int] = mapped_column(
        ForeignKey("scores.id", ondelete="CASCADE"), primary_key=True
    )
    neuroid_set: Mapped[str] = mapped_column(ForeignKey("neuroid_sets.hash"))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class CompletionRow(Base):
    __tablename__ = "completions"
    __table_args__ = (UniqueConstraint(*COMPLETION_KEY, name="uq_completion"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(256), index=True)
    dataset: Mapped[str] = mapped_column(String(256))
    metric: Mapped[str] = mapped_column(String(256))
    metric_hash: Mapped[str] = mapped_column(String(32))
    #: what the runner knows before building the model (identifier options, stimuli, data)
    plan_hash: Mapped[str] = mapped_column(String(64))
    weights_hash: Mapped[str | None] = mapped_column(String(128))
    stimuli_hash: Mapped[str | None] = mapped_column(String(64))
    data_hash: Mapped[str | None] = mapped_column(String(64))
    feature_key: Mapped[str | None] = mapped_column(String(64))
    n_scores: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float | None] = mapped_column(Float)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class LeaseRow(Base):
    """A combination a run is computing now. ``heartbeat`` (seconds since the epoch, the
    holder's clock) is renewed while the holder works; a lease whose heartbeat is older than
    the timeout, whose run has ended, or whose process is gone from this host is taken
    over."""

    __tablename__ = "leases"
    __table_args__ = (UniqueConstraint(*COMPLETION_KEY, name="uq_lease"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(256))
    dataset: Mapped[str] = mapped_column(String(256))
    metric: Mapped[str] = mapped_column(String(256))
    metric_hash: Mapped[str] = mapped_column(String(32))
    run_id: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(256))
    pid: Mapped[int] = mapped_column(Integer)
    #: one per holding process: who renews and releases the lease
    token: Mapped[str] = mapped_column(String(64), index=True)
    acquired_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    heartbeat: Mapped[float] = mapped_column(Float)


class FailureRow(Base):
    __tablename__ = "failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    stage: Mapped[str] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(256))
    dataset: Mapped[str | None] = mapped_column(String(256))
    metric: Mapped[str | None] = mapped_column(String(256))
    error_type: Mapped[str] = mapped_column(String(128))
    message: Mapped[str] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
