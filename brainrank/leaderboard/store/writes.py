"""Runs and writes: the run records (started, finished, killed), the registration of models,
datasets and metrics, the scores of one (model, dataset, metric configuration) with their
per-neuroid values and completion record in one transaction, failures and run statistics.

Every write is an idempotent upsert keyed on what determines the result, so a rerun, a
resumed run or two processes writing the same grid update rows instead of adding them.
The scores of one combination are written in one transaction together with their
per-neuroid values and a completion record, so a run killed at any moment leaves either
all of them or none.

**Run statistics.** Each job adds its seconds per stage and its regression fits to its
run's row (:meth:`Writes.add_run_stats`, an atomic increment), so the totals of a run on a
Dask cluster include every worker's.
"""

from __future__ import annotations

import hashlib
import math
import os
import traceback as tb
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, select, update

from brainrank.core.errors import StoreError
from brainrank.core.metric import Metric
from brainrank.core.scores import Score
from brainrank.core.specs import ModelMetadata
from brainrank.leaderboard.provenance import git_revision, jsonable, package_versions
from brainrank.leaderboard.schema import (
    COMPLETION_KEY,
    SCORE_KEY,
    CompletionRow,
    DatasetRow,
    FailureRow,
    LeaseRow,
    MetricRow,
    ModelRow,
    NeuroidSetRow,
    NeuroidValuesRow,
    RunRow,
    ScoreRow,
    utcnow,
)
from brainrank.leaderboard.store.connection import (
    _CHUNK,
    Database,
    _process_alive,
    this_host,
)
from brainrank.results import DatasetEntry, StageStats


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def neuroid_set_hash(ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


class Writes(Database):
    """Runs, registrations, scores, failures and run statistics (see the module docstring)."""

    def start_run(
        self,
        config: dict[str, Any],
        *,
        seeds: dict[str, Any] | None = None,
        executor: str | None = None,
    ) -> int:
        """Record a new run; first mark runs of this host whose process is gone (killed,
        for example by SIGKILL or a power cut) as ``killed`` instead of ``running``."""
        from brainrank._version import __version__

        host = this_host()
        self.mark_dead_runs(host)

        def work(conn: Connection) -> int:
            result = conn.execute(
                RunRow.__table__.insert()
                .values(
                    started_at=utcnow(),
                    status="running",
                    code_version=__version__,
                    git_revision=git_revision(),
                    host=host,
                    packages=package_versions(),
                    config=jsonable({**config, "pid": os.getpid()}),
                    seeds=jsonable(seeds) if seeds is not None else None,
                    executor=executor,
                    n_scores=0,
                    n_failures=0,
                )
                .returning(RunRow.id)
            )
            return int(result.scalar_one())

        return self._retrying(work)

    def mark_dead_runs(self, host: str) -> int:
        """Runs recorded as ``running`` on ``host`` whose process no longer exists become
        ``killed`` (with the number of score rows they committed); returns how many."""
        with self.engine.connect() as conn:
            running = conn.execute(
                select(RunRow.id, RunRow.config).where(
                    RunRow.status == "running", RunRow.host == host
                )
            ).all()
        dead = [
            run_id
            for run_id, config in running
            if isinstance(config, dict)
            and isinstance(config.get("pid"), int)
            and not _process_alive(config["pid"])
        ]
        for run_id in dead:
            n = self._run_rows(run_id)
            self._retrying(
                lambda conn, run_id=run_id, n=n: conn.execute(
                    update(RunRow)
                    .where(RunRow.id == run_id, RunRow.status == "running")
                    .values(status="killed", n_scores=n)
                )
            )
        return len(dead)

    def _run_rows(self, run_id: int) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(ScoreRow).where(ScoreRow.run_id == run_id)
                ).scalar_one()
            )

    def finish_run(
        self,
        run_id: int,
        status: str,
        n_scores: int,
        n_failures: int,
        n_skipped: int | None = None,
    ) -> None:
        """Record the end of a run. ``n_scores`` is what the caller counted; the rows the
        run committed are counted too and the larger is kept (a run interrupted inside a
        job has committed rows its caller never heard of)."""
        n_scores = max(int(n_scores), self._run_rows(run_id))
        values = {"finished_at": utcnow(), "status": status, "n_scores": n_scores,
                  "n_failures": n_failures}  # fmt: skip
        if n_skipped is not None:
            values["n_skipped"] = n_skipped
        self._retrying(
            lambda conn: conn.execute(update(RunRow).where(RunRow.id == run_id).values(**values))
        )

    def register_model(
        self,
        identifier: str,
        metadata: ModelMetadata,
        plugin: str = "",
        weights_hash: str | None = None,
    ) -> None:
        meta = metadata.to_dict()
        row = {
            "identifier": identifier,
            "source": meta["source"],
            "architecture": meta["architecture"],
            "family": meta["family"],
            "task": meta["task"],
            "training_data": meta["training_data"],
            "trained": meta["trained"],
            "n_params": meta["n_params"],
            "input_size": meta["input_size"],
            "training_method": meta.get("training_method"),
            "task_cluster": meta.get("task_cluster"),
            "imagenet_top1": meta.get("imagenet_top1"),
            "plugin": plugin,
            "details": jsonable(
                {
                    "description": meta["description"],
                    "top1_source": meta.get("top1_source"),
                    **meta["extra"],
                }
            ),
            "updated_at": utcnow(),
        }
        if weights_hash is not None:
            row["weights_hash"] = weights_hash
        self._retrying(lambda conn: self._upsert(conn, ModelRow, [row], ["identifier"]))

    def register_dataset(
        self,
        spec: DatasetEntry,
        n_stimuli: int | None = None,
        *,
        stimuli_hash: str | None = None,
        data_hash: str | None = None,
    ) -> None:
        meta = spec.metadata.to_dict()
        details = jsonable(meta)
        # the volumes its voxel indices refer to (per subject: shape and affine), so that
        # per-voxel values go back into brain volumes (brainrank.leaderboard.maps)
        info = getattr(getattr(spec, "dataset", None), "info", None)
        if isinstance(info, dict) and info.get("volumes"):
            details["volumes"] = jsonable(info["volumes"])
        row = {
            "identifier": spec.identifier,
            "species": meta["species"],
            "modality": meta["modality"],
            "kind": meta["kind"],
            "n_stimuli": n_stimuli if n_stimuli is not None else meta["n_stimuli"],
            "plugin": spec.plugin,
            "details": details,
            "updated_at": utcnow(),
        }
        if stimuli_hash is not None:
            row["stimuli_hash"] = stimuli_hash
        if data_hash is not None:
            row["data_hash"] = data_hash
        self._retrying(lambda conn: self._upsert(conn, DatasetRow, [row], ["identifier"]))

    def register_metric(
        self, metric: Metric, plugin: str = "", defaults: dict[str, Any] | None = None
    ) -> None:
        """Record a metric configuration: its parameters, the ``defaults`` of the preset it
        was built from (what its name is relative to; unknown when ``None``), the summary
        row the ranking takes and whether it is calibrated."""
        row = {
            "identifier": metric.identifier,
            "config_hash": metric.config_hash,
            "version": metric.version,
            "parameters": jsonable(metric.parameters),
            "plugin": plugin,
            "defaults": jsonable(defaults) if defaults is not None else None,
            "headline": metric.headline,
            "calibrated": bool(metric.calibrated),
        }
        self._retrying(
            lambda conn: self._upsert(conn, MetricRow, [row], ["identifier", "config_hash"])
        )

    def write_scores(
        self,
        *,
        run_id: int | None,
        model: str,
        dataset: str,
        metric: Metric,
        scores: Iterable[Score],
        feature_key: str | None = None,
        weights_hash: str | None = None,
        stimuli_hash: str | None = None,
        data_hash: str | None = None,
        plan_hash: str | None = None,
        seconds: float | None = None,
    ) -> int:
        """Store the result of one (model, dataset, metric configuration) in one transaction:
        its score rows (upserts), their per-neuroid values and, with ``plan_hash``, the
        completion record. Rows of an earlier result of the same combination that this one
        does not have are removed. Returns how many score rows were written."""
        scores = list(scores)
        now = utcnow()
        hashes = {"feature_key": feature_key, "weights_hash": weights_hash,
                  "stimuli_hash": stimuli_hash, "data_hash": data_hash}  # fmt: skip
        rows = []
        for s in scores:
            rows.append(
                {
                    "model": model,
                    "dataset": dataset,
                    "metric": metric.identifier,
                    "metric_hash": metric.config_hash,
                    "subject": str(s.subject),
                    "region": str(s.region),
                    "layer": str(s.layer),
                    "selection": str(s.selection),
                    "value": _finite(s.value),
                    "ceiling": _finite(s.ceiling),
                    "normalized": _finite(s.normalized),
                    "ceiling_low": _finite(s.ceiling_low),
                    "ceiling_high": _finite(s.ceiling_high),
                    "chance": _finite(s.chance),
                    "chance_sd": _finite(s.chance_sd),
                    "ci_low": _finite(s.ci_low),
                    "ci_high": _finite(s.ci_high),
                    "n_neuroids": int(s.n_neuroids) if s.n_neuroids is not None else None,
                    "layer_index": int(s.layer_index) if s.layer_index is not None else None,
                    "relative_depth": _finite(s.relative_depth),
                    "details": jsonable(s.extra) or None,
                    "run_id": run_id,
                    "updated_at": now,
                    **hashes,
                }
            )
        keys = [tuple(r[k] for k in SCORE_KEY) for r in rows]
        if len(set(keys)) != len(keys):
            raise StoreError(
                f"metric {metric.identifier!r} returned several scores for the same "
                "(subject, region, layer, selection); each must be unique."
            )
        order = sorted(range(len(rows)), key=keys.__getitem__)  # key order: no deadlocks
        rows = [rows[i] for i in order]
        arrays = _neuroid_arrays([scores[i] for i in order], [keys[i] for i in order])
        completion = None
        if plan_hash is not None:
            completion = {
                "model": model,
                "dataset": dataset,
                "metric": metric.identifier,
                "metric_hash": metric.config_hash,
                "plan_hash": plan_hash,
                "n_scores": len(rows),
                "seconds": seconds,
                "run_id": run_id,
                "updated_at": now,
                **hashes,
            }

        def work(conn: Connection) -> int:
            self._remove_superseded(conn, model, dataset, metric, set(keys))
            self._upsert(conn, ScoreRow, rows, SCORE_KEY)
            if arrays:
                self._write_arrays(conn, model, dataset, metric, arrays)
            if completion is not None:
                self._upsert(conn, CompletionRow, [completion], COMPLETION_KEY)
                lease = LeaseRow
                conn.execute(
                    lease.__table__.delete().where(
                        lease.model == model, lease.dataset == dataset,
                        lease.metric == metric.identifier,
                        lease.metric_hash == metric.config_hash, lease.run_id == run_id,
                    )
                )  # fmt: skip
            return len(rows)

        return self._retrying(work)

    @staticmethod
    def _stored_ids(conn: Connection, model: str, dataset: str, metric: Metric) -> dict[tuple, int]:
        """The score rows stored for one combination: their key (``SCORE_KEY``) -> row id."""
        t = ScoreRow
        found = conn.execute(
            select(t.id, *(getattr(t, k) for k in SCORE_KEY)).where(
                t.model == model,
                t.dataset == dataset,
                t.metric == metric.identifier,
                t.metric_hash == metric.config_hash,
            )
        ).all()
        return {tuple(row[1:]): row[0] for row in found}

    def _remove_superseded(
        self, conn: Connection, model: str, dataset: str, metric: Metric, keep: set[tuple]
    ) -> None:
        """Delete rows of an earlier result of this combination that the new one does not
        have (a best layer that moved, a layer the model no longer has): a combination's
        rows are always one result, never a mix of two."""
        t = ScoreRow
        ids = self._stored_ids(conn, model, dataset, metric)
        stale = sorted(score_id for key, score_id in ids.items() if key not in keep)
        for start in range(0, len(stale), _CHUNK):
            chunk = stale[start : start + _CHUNK]
            conn.execute(
                NeuroidValuesRow.__table__.delete().where(NeuroidValuesRow.score_id.in_(chunk))
            )
            conn.execute(t.__table__.delete().where(t.id.in_(chunk)))

    def _write_arrays(
        self,
        conn: Connection,
        model: str,
        dataset: str,
        metric: Metric,
        arrays: dict[tuple, tuple[tuple[str, ...], bytes]],
    ) -> None:
        ids = self._stored_ids(conn, model, dataset, metric)
        sets: dict[str, dict[str, Any]] = {}
        values = []
        for key, (neuroid_ids, data) in arrays.items():
            digest = neuroid_set_hash(neuroid_ids)
            sets.setdefault(digest, {"hash": digest, "n": len(neuroid_ids),
                                     "ids": list(neuroid_ids)})  # fmt: skip
            values.append({"score_id": ids[key], "neuroid_set": digest, "data": data})
        self._upsert(conn, NeuroidSetRow, sorted(sets.values(), key=lambda r: r["hash"]),
                     ["hash"], update_columns=[])  # fmt: skip
        values.sort(key=lambda r: r["score_id"])
        self._upsert(conn, NeuroidValuesRow, values, ["score_id"])

    def record_failure(
        self,
        run_id: int | None,
        stage: str,
        error: BaseException | str,
        *,
        model: str | None = None,
        dataset: str | None = None,
        metric: str | None = None,
        traceback: str | None = None,
    ) -> None:
        if isinstance(error, BaseException):
            error_type, message = type(error).__name__, str(error)
            traceback = traceback or "".join(tb.format_exception(error))
        else:
            error_type, message = "Error", error
        row = {"run_id": run_id, "stage": stage, "model": model, "dataset": dataset,
               "metric": metric, "error_type": error_type, "message": message,
               "traceback": traceback, "created_at": utcnow()}  # fmt: skip
        self._retrying(lambda conn: conn.execute(FailureRow.__table__.insert().values(**row)))

    # ------------------------------------------------------------------ run statistics

    def add_run_stats(self, run_id: int | None, stats: StageStats) -> None:
        """Add a job's seconds per stage and fits to its run's row, as one atomic
        increment."""
        if run_id is None:
            return
        t = RunRow
        values: dict[str, Any] = {"fits": func.coalesce(t.fits, 0) + int(stats.fits)}
        for stage, seconds in stats.seconds.items():
            column = getattr(t, f"seconds_{stage}", None)
            if column is not None:
                values[f"seconds_{stage}"] = func.coalesce(column, 0.0) + float(seconds)
        self._retrying(lambda conn: conn.execute(update(t).where(t.id == run_id).values(**values)))


def _neuroid_arrays(
    scores: Sequence[Score], keys: Sequence[tuple]
) -> dict[tuple, tuple[tuple[str, ...], bytes]]:
    """Per-neuroid values to store, keyed like the score rows. A summary row whose values are
    those of its layer's row is not stored twice (queries follow it to that row)."""
    out: dict[tuple, tuple[tuple[str, ...], bytes]] = {}
    layer_data: dict[tuple[str, str, str], bytes] = {}
    for score, key in zip(scores, keys, strict=True):
        if score.per_neuroid is None:
            continue
        values = np.asarray(score.per_neuroid, dtype="<f4").reshape(-1)
        ids = tuple(str(i) for i in score.neuroid_ids) if score.neuroid_ids is not None else None
        if ids is None:
            ids = tuple(str(i) for i in range(values.size))
        if len(ids) != values.size:
            raise StoreError(
                f"a score of layer {score.layer!r} has {values.size} per-neuroid values but "
                f"{len(ids)} neuroid ids; the metric must give one id per value."
            )
        data = values.tobytes()
        if score.selection == "layer":
            layer_data[(score.subject, score.region, score.layer)] = data
        out[key] = (ids, data)
    for score, key in zip(scores, keys, strict=True):
        same = key in out and layer_data.get((score.subject, score.region, score.layer))
        if score.selection != "layer" and same == out.get(key, (None, None))[1]:
            del out[key]
    return out
