"""The grid layer: plans the model x dataset x metric grid and runs its jobs in this process
or on Dask, writing through the contracts of :mod:`brainrank.results`.

- :mod:`brainrank.grid.plan`: the plan as a value (``plan.plan(...)``): checks, sources,
  plan hashes and the run configuration;
- :mod:`brainrank.grid.execute`: runs a plan and records the run (``execute.execute(...)``,
  with the :class:`InProcess` or :class:`Dask` executor);
- :mod:`brainrank.grid.run`: :func:`run_grid`, plan then execute in one call;
- :mod:`brainrank.grid.jobs`: the job function (:func:`run_job`), the only path from a model
  to a stored score; :mod:`brainrank.grid.context` (what a worker loads),
  :mod:`brainrank.grid.leasing` (a job's leases), :mod:`brainrank.grid.failures`;
- :mod:`brainrank.grid.progress`: progress bars.

The functions ``plan`` and ``execute`` are imported from their modules (``from
brainrank.grid.plan import plan``), so that ``brainrank.grid.plan`` stays the module.
"""

from brainrank.grid.context import GridConfig
from brainrank.grid.execute import Dask, InProcess, RunSummary
from brainrank.grid.failures import Failure
from brainrank.grid.jobs import Job, JobResult, run_job
from brainrank.grid.plan import DatasetSource, ModelSource, Plan
from brainrank.grid.run import run_grid
from brainrank.results import MemoryStore, ResultStore

__all__ = [
    "Dask",
    "DatasetSource",
    "Failure",
    "GridConfig",
    "InProcess",
    "Job",
    "JobResult",
    "MemoryStore",
    "ModelSource",
    "Plan",
    "ResultStore",
    "RunSummary",
    "run_grid",
    "run_job",
]
