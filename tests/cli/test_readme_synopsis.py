"""The README is true (issue 24, item 6): its synopsis lists every command and every option
(read from click itself), and its marked numbers are rewritten by a script, not by hand."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import click
import pytest

from brainrank.cli import main

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SCRIPT = REPO / "docs" / "scripts" / "readme_numbers.py"


def _commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def synopsis() -> dict[tuple[str, ...], str]:
    """Each command's synopsis text in the README's "Command line" block (continuation
    lines included), with ``[FILTERS]`` written out; the key ``()`` is the global line."""
    text = README.read_text()
    start = text.index("```\n", text.index("## Command line")) + 4
    body = text[start : text.index("\n```", start)]
    entries: dict[tuple[str, ...], str] = {}
    current: tuple[str, ...] | None = None
    filters = ""
    names = {path for path, _ in _commands(main)}
    for line in body.splitlines():
        if line.startswith("FILTERS = "):
            current = ("FILTERS",)
            entries[current] = line[len("FILTERS = ") :]
            continue
        if line.startswith("brainrank "):
            words = line.split()[1:]
            current = ()
            for length in (2, 1):  # the longest command path first: "plugin new"
                if tuple(words[:length]) in names:
                    current = tuple(words[:length])
                    break
            entries[current] = entries.get(current, "") + " " + line
            continue
        if line.startswith(" ") and current is not None:
            entries[current] = entries.get(current, "") + " " + line
        elif not line.strip():
            current = None
    filters = entries.pop(("FILTERS",), "")
    return {k: v.replace("[FILTERS]", filters) for k, v in entries.items()}


def _listed(flag: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


def test_the_synopsis_lists_every_command_and_every_option():
    found = synopsis()
    commands = dict(_commands(main))
    assert len(commands) > 20  # the walk found the commands
    missing = []
    for path, command in commands.items():
        if path not in found:
            missing.append(f"command `brainrank {' '.join(path)}`")
            continue
        for param in command.params:
            if not isinstance(param, click.Option):
                continue
            for flag in [*param.opts, *param.secondary_opts]:
                if flag.startswith("--") and not _listed(flag, found[path]):
                    missing.append(f"`brainrank {' '.join(path)}` option {flag}")
    for param in main.params:  # the global options
        for flag in [*param.opts, *param.secondary_opts]:
            if not _listed(flag, found.get((), "")):
                missing.append(f"global option {flag}")
    assert not missing, "the README's synopsis lacks:\n" + "\n".join(missing)
    stale = [f"brainrank {' '.join(p)}" for p in found if p and p not in commands]
    assert not stale, f"the synopsis names commands that do not exist: {stale}"


def test_the_synopsis_check_fails_on_a_missing_option(monkeypatch):
    """The check above can fail: an option added to a command without its synopsis line."""
    command = main.commands["serve"]
    extra = click.Option(["--made-up-option"], help="not in the README")
    monkeypatch.setattr(command, "params", [*command.params, extra])
    with pytest.raises(AssertionError, match="serve` option --made-up-option"):
        test_the_synopsis_lists_every_command_and_every_option()


def _script():
    spec = importlib.util.spec_from_file_location("readme_numbers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_numbers_are_in_blocks_a_script_rewrites():
    script = _script()
    text = README.read_text()
    for name in ("ranking", "cost"):
        assert script.read_block(text, name) is not None, name
    ranking = script.read_block(text, "ranking")
    assert ranking.startswith("```\n") and "== simulated data ==" in ranking
    sample = "a\n<!-- readme:ranking -->\nold\n<!-- /readme:ranking -->\nb\n"
    new = script.replace_block(sample, "ranking", "new\n")
    assert new == "a\n<!-- readme:ranking -->\nnew\n<!-- /readme:ranking -->\nb\n"
    assert script.replace_block(new, "ranking", "new\n") == new  # idempotent
    with pytest.raises(SystemExit, match="no <!-- readme:cost -->"):
        script.replace_block(sample, "cost", "x\n")


@pytest.mark.slow
def test_the_readme_ranking_is_what_a_run_prints():
    """Runs the default suite in a fresh home (minutes): the README's ranking block must be
    exactly what `brainrank leaderboard` prints after it."""
    assert _script().main(["--check"]) == 0
