"""Opening a leaderboard (issue 13, item 14): an unsupported database URL and a damaged
schema version row give clear errors.

docs/reliability.md lists it with the other faults of issue 13.
"""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("url", ["mysql://user@localhost/lb", "oracle://u@h/db"])
def test_an_unsupported_database_url_says_which_are_supported(url):
    """Was: ``mysql://`` answered with "Install the PostgreSQL driver"."""
    from brainrank.core.errors import StoreError
    from brainrank.leaderboard import open_store

    with pytest.raises(StoreError, match="only SQLite and PostgreSQL") as caught:
        open_store(url)
    assert "PostgreSQL driver" not in str(caught.value)


@pytest.mark.parametrize("value", ["two", "", "-3"])
def test_a_corrupt_schema_version_row_is_a_clear_store_error(tmp_path, value):
    """Was: ``ValueError: invalid literal for int()`` as a traceback."""
    import sqlite3

    from brainrank.core.errors import StoreError
    from brainrank.leaderboard import open_store

    path = tmp_path / "lb.db"
    open_store(str(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (value,))
    with pytest.raises(StoreError, match=r"schema_version.*damaged") as caught:
        open_store(str(path), create=False)
    assert str(path) in str(caught.value) and repr(value) in str(caught.value)
