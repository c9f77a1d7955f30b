"""Reads: scores with their models' metadata, per-neuroid values, completion records, runs,
failures, the registered models, datasets and metrics, and the values each filter takes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import inspect, or_, select, text

from brainrank.core.scores import Score
from brainrank.leaderboard.schema import (
    CompletionRow,
    DatasetRow,
    FailureRow,
    MetricRow,
    ModelRow,
    NeuroidSetRow,
    NeuroidValuesRow,
    RunRow,
    ScoreRow,
)
from brainrank.leaderboard.store.connection import _CHUNK, Database
from brainrank.results import ComboKey


class Reads(Database):
    """What the queries, the report and the web page read (see the module docstring)."""

    def scores_frame(self, **patterns: Any) -> pd.DataFrame:
        """Every score joined with its model's metadata. ``patterns`` (column -> shell
        patterns) narrow the rows in SQL; callers still apply the exact match (SQL ``LIKE``
        is case-insensitive on SQLite and has no character classes)."""
        stmt = select(
            ScoreRow.id.label("score_id"),
            ScoreRow.model,
            ScoreRow.dataset,
            ScoreRow.metric,
            ScoreRow.metric_hash,
            ScoreRow.subject,
            ScoreRow.region,
            ScoreRow.layer,
            ScoreRow.selection,
            ScoreRow.value.label("score"),
            ScoreRow.ceiling,
            ScoreRow.normalized,
            ScoreRow.ceiling_low,
            ScoreRow.ceiling_high,
            ScoreRow.chance,
            ScoreRow.chance_sd,
            ScoreRow.ci_low,
            ScoreRow.ci_high,
            ScoreRow.n_neuroids,
            ScoreRow.layer_index,
            ScoreRow.relative_depth,
            ScoreRow.details,
            ScoreRow.weights_hash,
            ScoreRow.stimuli_hash,
            ScoreRow.data_hash,
            ScoreRow.feature_key,
            ScoreRow.run_id,
            ScoreRow.updated_at,
            ModelRow.family,
            ModelRow.trained,
            ModelRow.source,
            ModelRow.architecture,
            ModelRow.task,
            ModelRow.training_data,
            ModelRow.training_method,
            ModelRow.task_cluster,
            MetricRow.headline,
            MetricRow.calibrated,
        ).join(ModelRow, ModelRow.identifier == ScoreRow.model, isouter=True)
        stmt = stmt.join(
            MetricRow,
            (MetricRow.identifier == ScoreRow.metric)
            & (MetricRow.config_hash == ScoreRow.metric_hash),
            isouter=True,
        )
        for column, value in patterns.items():
            if value is None:
                continue
            target = ModelRow.family if column == "family" else getattr(ScoreRow, column)
            clause = _like_clause(target, value)
            if clause is not None:
                stmt = stmt.where(clause)
        return self._frame(stmt.order_by(ScoreRow.id))

    def stored_scores(self, key: ComboKey) -> list[Score]:
        """The stored scores of one (model, dataset, metric, metric_hash) combination as
        :class:`~brainrank.core.scores.Score` objects, in the order they were stored, with
        their per-neuroid values: a summary row stored without its own has those of its
        layer's row, as :func:`brainrank.leaderboard.per_neuroid` gives them."""
        model, dataset, metric, metric_hash = key
        t = ScoreRow
        stmt = select(t).where(
            t.model == model, t.dataset == dataset, t.metric == metric, t.metric_hash == metric_hash
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt.order_by(t.id)).all()
        arrays = self.neuroid_values([row.id for row in rows])
        layer_rows = {(r.subject, r.region, r.layer): r.id for r in rows if r.selection == "layer"}
        out = []
        for row in rows:
            found = arrays.get(row.id)
            if found is None and row.selection != "layer":
                found = arrays.get(layer_rows.get((row.subject, row.region, row.layer), -1))
            out.append(
                Score(
                    subject=row.subject,
                    region=row.region,
                    layer=row.layer,
                    value=float("nan") if row.value is None else float(row.value),
                    n_neuroids=int(row.n_neuroids or 0),
                    selection=row.selection,
                    layer_index=row.layer_index,
                    relative_depth=row.relative_depth,
                    ceiling=row.ceiling,
                    ceiling_low=row.ceiling_low,
                    ceiling_high=row.ceiling_high,
                    chance=row.chance,
                    chance_sd=row.chance_sd,
                    ci_low=row.ci_low,
                    ci_high=row.ci_high,
                    extra=dict(row.details or {}),
                    per_neuroid=found[1] if found is not None else None,
                    neuroid_ids=tuple(found[0]) if found is not None else None,
                )
            )
        return out

    def neuroid_values(self, score_ids: Sequence[int]) -> dict[int, tuple[list[str], np.ndarray]]:
        """``{score_id: (neuroid_ids, float32 values)}`` for the rows that have them."""
        out: dict[int, tuple[list[str], np.ndarray]] = {}
        ids = [int(i) for i in score_ids]
        for start in range(0, len(ids), _CHUNK):
            stmt = (
                select(NeuroidValuesRow.score_id, NeuroidValuesRow.data, NeuroidSetRow.ids)
                .join(NeuroidSetRow, NeuroidSetRow.hash == NeuroidValuesRow.neuroid_set)
                .where(NeuroidValuesRow.score_id.in_(ids[start : start + _CHUNK]))
            )
            with self.engine.connect() as conn:
                for score_id, data, neuroid_ids in conn.execute(stmt):
                    out[int(score_id)] = (list(neuroid_ids), np.frombuffer(data, dtype="<f4"))
        return out

    def completions_frame(self, models: Sequence[str] | None = None) -> pd.DataFrame:
        stmt = select(CompletionRow).order_by(CompletionRow.id)
        if models is not None:
            stmt = stmt.where(CompletionRow.model.in_(list(models)))
        return self._frame(stmt)

    def combination_seconds(self) -> dict[tuple[str, str], float]:
        """The median seconds a (metric, dataset) combination took to score and write in
        earlier runs (from the completion records): a run's first estimate of its time."""
        stmt = select(CompletionRow.metric, CompletionRow.dataset, CompletionRow.seconds).where(
            CompletionRow.seconds.is_not(None)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        seconds: dict[tuple[str, str], list[float]] = {}
        for metric, dataset, value in rows:
            seconds.setdefault((str(metric), str(dataset)), []).append(float(value))
        return {key: float(np.median(values)) for key, values in seconds.items()}

    def completed(self, keys: Iterable[tuple[str, str, str, str]]) -> dict[tuple, dict[str, Any]]:
        """Completion records of the given (model, dataset, metric, metric_hash) keys."""
        wanted = [tuple(k) for k in dict.fromkeys(keys)]
        with self.engine.connect() as conn:
            return self._completed_in(conn, wanted)

    def models_frame(self) -> pd.DataFrame:
        return self._frame(select(ModelRow).order_by(ModelRow.identifier))

    def datasets_frame(self) -> pd.DataFrame:
        return self._frame(select(DatasetRow).order_by(DatasetRow.identifier))

    def metrics_frame(self) -> pd.DataFrame:
        return self._frame(select(MetricRow).order_by(MetricRow.identifier, MetricRow.id))

    def runs_frame(self) -> pd.DataFrame:
        return self._frame(select(RunRow).order_by(RunRow.id))

    def failures_frame(self, run_id: int | None = None) -> pd.DataFrame:
        stmt = select(FailureRow).order_by(FailureRow.id)
        if run_id is not None:
            stmt = stmt.where(FailureRow.run_id == run_id)
        return self._frame(stmt)

    def distinct_values(self) -> dict[str, list[str]]:
        """The values each filter column takes among stored scores (SELECT DISTINCT, so it
        stays fast on large leaderboards)."""
        out: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for name in ("dataset", "metric", "region", "subject", "selection"):
                column = getattr(ScoreRow, name)
                out[name] = sorted(
                    str(v) for v in conn.execute(select(column).distinct()).scalars()
                )
            families = (
                select(ModelRow.family)
                .distinct()
                .where(ModelRow.identifier.in_(select(ScoreRow.model).distinct()))
            )
            out["family"] = sorted(str(v) for v in conn.execute(families).scalars() if v)
            out["model"] = sorted(
                str(v) for v in conn.execute(select(ScoreRow.model).distinct()).scalars()
            )
        return out

    def count(self, table: str = "scores") -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())

    def table_names(self) -> list[str]:
        return sorted(inspect(self.engine).get_table_names())


#: more patterns than this for one column are matched in Python only, not in SQL
_MAX_SQL_PATTERNS = 100


def _like_clause(column: Any, patterns: Any) -> Any:
    """An SQL prefilter for shell patterns, or None when one cannot be expressed."""
    if isinstance(patterns, str):
        patterns = [p.strip() for p in patterns.split(",") if p.strip()]
    patterns = [str(p) for p in patterns]
    if not patterns or any("[" in p for p in patterns):
        return None
    if len(patterns) > _MAX_SQL_PATTERNS:
        # one OR term per pattern: SQLite refuses a tree deeper than 1000 ("Expression tree
        # is too large"); past this size the caller's exact match in Python does it all
        return None
    clauses = []
    for p in patterns:
        if "*" in p or "?" in p:
            like = p.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            like = like.replace("*", "%").replace("?", "_")
            clauses.append(column.like(like, escape="\\"))
        else:
            clauses.append(column == p)
    return or_(*clauses)
