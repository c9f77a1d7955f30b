"""Process settings applied when brainrank is imported."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = (
    "import os, sys; import brainrank; "
    "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
)


def _probe(**env_changes: str | None) -> list[str]:
    env = dict(os.environ)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_openmp_threads_sleep_when_idle_unless_the_user_chose():
    # set before torch can load (importing brainrank does not import torch at all)
    assert _probe(OMP_WAIT_POLICY=None) == ["PASSIVE", "False"]
    assert _probe(OMP_WAIT_POLICY="ACTIVE") == ["ACTIVE", "False"]
