"""Issue 13, item 11: names with ``$`` in the report, and a failed section's reason."""

from __future__ import annotations

import html

import synthetic_leaderboard

from brainrank.leaderboard import open_store, report

#: each would start matplotlib mathtext (and fail to parse) if not escaped
REGIONS = ("V$1$", "$\\alpha", "IT$_$")


def test_dollar_signs_in_names_draw_every_section(tmp_path, monkeypatch):
    """Was: 'depth', 'best-depth' and 'stacking' said "this section failed:" (mathtext)."""
    monkeypatch.setattr(synthetic_leaderboard, "REGIONS", REGIONS)
    path = tmp_path / "lb.db"
    synthetic_leaderboard.build(path)
    store = open_store(str(path))
    sections = report.write_report(store, tmp_path / "r.html")
    failed = {s.anchor: s.missing for s in sections if s.missing and "failed" in s.missing}
    assert not failed
    drawn = {s.anchor for s in sections if s.figures}
    assert {"depth", "best-depth", "stacking"} <= drawn
    text = (tmp_path / "r.html").read_text()
    assert all(html.escape(region) in text for region in REGIONS)


def test_a_failed_section_always_states_its_reason(tmp_path, monkeypatch):
    def silent(store, options):
        raise ValueError("\n")  # a message that is only whitespace

    def loud(store, options):
        raise KeyError("region")

    monkeypatch.setattr(report, "all_sections",
                        lambda: ([silent, loud], {silent: ("a", "A"), loud: ("b", "B")}))  # fmt: skip
    store = open_store(str(tmp_path / "empty.db"))
    first, second = report.build_sections(store)
    assert first.missing == "this section failed: ValueError (no message)"
    assert second.missing == "this section failed: KeyError: 'region'"
