"""Whole-DataFrame comparison against hand-written or independently read rows."""
from __future__ import annotations

import datetime as dt

from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual


def _utc_naive(v):
    """Iceberg timestamptz reads back tz-aware from PyIceberg and naive UTC from Spark."""
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return v


def assert_rows(df, columns: list[str], expected: list[tuple]) -> None:
    """Same columns in order, same rows in any order, floats equal to 1e-9 relative."""
    assert df.columns == columns, f"columns differ: got {df.columns}, expected {columns}"
    assertDataFrameEqual(df, [Row(**dict(zip(columns, map(_utc_naive, r)))) for r in expected],
                         rtol=1e-9, atol=1e-12)
