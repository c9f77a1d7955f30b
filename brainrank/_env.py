"""Process settings that must be in place before torch (and its OpenMP runtime) loads.

Imported first by ``brainrank/__init__.py``.

Idle OpenMP threads (torch's) sleep instead of spinning, so that between forward passes they
do not hold the cores that the BLAS threads of the ridge and RSA kernels, or the other
workers of a parallel run, need. libgomp reads ``OMP_WAIT_POLICY`` once, when torch loads,
so it is set here, before anything in brainrank imports torch. A value already in the
environment is kept, and when torch was imported before brainrank the setting has no
effect (set it in the shell then).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
