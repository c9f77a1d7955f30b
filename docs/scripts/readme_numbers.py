"""Regenerate the README's numbers from a run: the sample ranking and what `make run` costs.

It runs the default suite (``brainrank run``, what ``make run`` does) in a fresh, temporary
``BRAINRANK_HOME`` (nothing cached, a new leaderboard), measures the run's wall time, CPU
time and peak memory (of the run's process, from ``getrusage`` of the children), reads the
number of scores it wrote, prints the leaderboard as ``brainrank leaderboard`` does at 100
columns, and rewrites the README's marked blocks:

- ``<!-- readme:ranking -->`` ... ``<!-- /readme:ranking -->``: the ranking, verbatim;
- ``<!-- readme:cost -->`` ... ``<!-- /readme:cost -->``: one sentence with the figures,
  the machine (CPU model and core count) and the date.

Run from the repository root::

    python docs/scripts/readme_numbers.py            # rewrite README.md (minutes on 2 cores)
    python docs/scripts/readme_numbers.py --check    # exit 1 when README.md differs
    python docs/scripts/readme_numbers.py --home DIR # run in DIR and keep it (or reuse it
                                                     # when it holds a leaderboard already)

The ranking is deterministic (fixed seeds): ``--check`` fails when a change moved a number.
The cost sentence changes with the machine; ``--check`` ignores it.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
COLUMNS = 100


def block(name: str) -> re.Pattern[str]:
    """The marked block ``name`` of the README (markers kept)."""
    return re.compile(rf"(<!-- readme:{name} -->\n)(.*?)(<!-- /readme:{name} -->)", re.DOTALL)


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with the marked block ``name`` holding ``body`` (which ends with a newline);
    raises when the markers are missing."""
    pattern = block(name)
    if not pattern.search(text):
        raise SystemExit(
            f"README.md has no <!-- readme:{name} --> ... <!-- /readme:{name} --> block"
        )
    return pattern.sub(lambda m: m.group(1) + body + m.group(3), text, count=1)


def read_block(text: str, name: str) -> str | None:
    found = block(name).search(text)
    return found.group(2) if found else None


def brainrank(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "brainrank", *args], env=env, text=True,
                          capture_output=True, check=False)  # fmt: skip


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_suite(home: Path, env: dict[str, str]) -> dict[str, float]:
    """Run the default suite in ``home``; its wall and CPU seconds, peak memory (GB) and
    scores written."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    result = brainrank("run", "--quiet", env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = max(load, os.getloadavg()[1])  # the 5-minute average at the end
    if result.returncode != 0:
        raise SystemExit(f"brainrank run failed ({result.returncode}):\n{result.stderr[-3000:]}")
    written = re.search(r"written: (\d+) scores", result.stderr)
    return {
        "wall": wall,
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "peak_gb": after.ru_maxrss / 2**20,  # kilobytes on Linux
        "scores": float(written.group(1)) if written else float("nan"),
        "load": load,
    }


def ranking_text(env: dict[str, str]) -> str:
    result = brainrank("leaderboard", env={**env, "COLUMNS": str(COLUMNS)})
    if result.returncode != 0:
        raise SystemExit(f"brainrank leaderboard failed:\n{result.stderr[-3000:]}")
    lines = result.stdout.splitlines()
    if lines and lines[0].startswith("leaderboard: "):  # the temporary path
        lines[0] = "leaderboard: ~/.brainrank/leaderboard.db"
    return "```\n" + "\n".join(lines).rstrip() + "\n```\n"


def cost_text(cost: dict[str, float]) -> str:
    cores = os.cpu_count() or 0
    busy = (
        f"; the machine was shared: load average {cost['load']:.1f} on {cores} cores, so the "
        "wall time is longer than on an idle machine"
        if cost.get("load", 0.0) > cores
        else ""
    )
    return (
        f"The first time, on a {cores}-core {cpu_name()} machine, it wrote {cost['scores']:.0f} "
        f"scores in {cost['wall']:.0f} s wall ({cost['cpu']:.0f} s CPU, peak memory "
        f"{cost['peak_gb']:.1f} GB; measured by `docs/scripts/readme_numbers.py` in a fresh "
        f"`BRAINRANK_HOME` on {datetime.date.today():%Y-%m-%d}{busy}). Afterwards everything "
        "is stored and a rerun only checks that.\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when README.md differs")
    parser.add_argument("--home", type=Path,
                        help="the BRAINRANK_HOME to run in and keep (reused when it holds a "
                        "leaderboard)")  # fmt: skip
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="brainrank-readme-") as temporary:
        home = args.home or Path(temporary)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BRAINRANK_")}
        env.update(BRAINRANK_HOME=str(home), BRAINRANK_OFFLINE="1")
        reuse = args.home is not None and (args.home / "leaderboard.db").is_file()
        cost = None if reuse else run_suite(home, env)
        ranking = ranking_text(env)
    new = replace_block(text, "ranking", ranking)
    if cost is not None:
        new = replace_block(new, "cost", cost_text(cost))
    if args.check:
        if read_block(new, "ranking") != read_block(text, "ranking"):
            print("README.md's ranking differs from a run:\n" + ranking, file=sys.stderr)
            return 1
        print("README.md's ranking is what a run prints")
        return 0
    args.readme.write_text(new, encoding="utf-8")
    print(ranking + (cost_text(cost) if cost else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
