"""Start-up imports only what a command needs (issue 12, item 3): listing plugins and
parsing a command's arguments import no deep-learning or plotting library (torch alone
takes seconds to import). Checked on ``sys.modules`` in a fresh interpreter, never on time."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: libraries that listing plugins or parsing arguments must not import
HEAVY = ("torch", "torchvision", "timm", "open_clip", "visualpriors", "sklearn", "matplotlib",
         "h5py", "nibabel", "dask", "distributed", "huggingface_hub")  # fmt: skip

SCRIPT = """
import json, sys
from brainrank.cli import main
try:
    main({args!r}, standalone_mode=False)
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)), file=sys.stderr)
"""


def _imported(args: list[str], heavy: tuple[str, ...] = HEAVY) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(args=args, heavy=heavy)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "args", [["models"], ["datasets"], ["metrics"], ["run", "--help"], ["extract", "--help"]]
)
def test_listing_and_parsing_import_no_heavy_library(args):
    assert _imported(args) == []


def test_the_web_framework_is_imported_only_by_serve():
    """`brainrank serve` imports FastAPI and uvicorn when it serves, not to list or parse."""
    web = ("fastapi", "uvicorn", "starlette", "pydantic")
    assert _imported(["serve", "--help"], web) == []
    assert _imported(["models"], web) == []


def test_listing_models_opens_no_database():
    assert _imported(["models"], ("sqlalchemy",)) == []


def test_the_check_sees_an_import():
    """The probe itself works: modules the command does import are seen."""
    assert _imported(["models"], ("json", "click")) == ["click", "json"]
