"""The grid layer: plans the model x dataset x metric grid and runs its jobs in this process
or on Dask, writing through the :class:`~brainrank.results.ResultStore` protocol.

- :mod:`brainrank.grid.run`: checking, planning, resuming, execution (:func:`run_grid`) and
  the Python API's door for one combination (:func:`score_one`);
- :mod:`brainrank.grid.jobs`: the job function (:func:`run_job`), the only path from a model
  to a stored score;
- :mod:`brainrank.grid.progress`: progress bars.
"""

from brainrank.grid.context import GridConfig
from brainrank.grid.failures import Failure
from brainrank.grid.jobs import Job, JobResult, run_job
from brainrank.grid.run import RunSummary, run_grid, score_one
from brainrank.results import MemoryStore, ResultStore

__all__ = [
    "Failure",
    "GridConfig",
    "Job",
    "JobResult",
    "MemoryStore",
    "ResultStore",
    "RunSummary",
    "run_grid",
    "run_job",
    "score_one",
]
