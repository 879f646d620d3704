"""The same screen on PostgreSQL through Ibis (any engine Ibis reaches, by connection URL)."""

from __future__ import annotations

import gc
import os
import uuid
from pathlib import Path

import pandas as pd
import pytest

from alpsdx.screening.backends import open_omop
from alpsdx.screening.omop import CLINICAL_TABLES, REQUIRED_COLUMNS
from alpsdx.screening.screen import run_screen

pytestmark = pytest.mark.postgres

EXTRACT = Path(__file__).resolve().parents[1] / "data" / "omop" / "source_only"


# the stage tables must not be left to Ibis's cache finalizers, which fail on PostgreSQL
# when they run late ("DROP TABLE IF EXISTS" with no name): collected inside the test, any
# such failure is an error here
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_postgres_ranks_like_duckdb() -> None:
    url = os.environ.get("ALPSDX_TEST_POSTGRES_URL") or os.environ.get("ALPSDX_TEST_PG_URL")
    if not url:
        pytest.skip("no PostgreSQL (set ALPSDX_TEST_POSTGRES_URL)")
    sqlalchemy = pytest.importorskip("sqlalchemy")
    schema = f"omop_{uuid.uuid4().hex[:8]}"
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as c:
        c.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    try:
        for table in CLINICAL_TABLES:
            df = pd.read_csv(EXTRACT / f"{table}.csv")
            df.columns = [c.lower() for c in df.columns]
            for col, typ in REQUIRED_COLUMNS[table].items():
                if typ == "date":
                    df[col] = pd.to_datetime(df[col]).dt.date
            df.to_sql(table, engine, schema=schema, index=False)
        ibis_url = "postgres://" + url.split("://", 1)[1]
        res = run_screen(open_omop(ibis_url, database=schema))
        duck = run_screen(open_omop(EXTRACT))
        assert res.backend == "postgres"
        cols = ["rank", "person_id", "score", "flag_date", "evidence"]
        pd.testing.assert_frame_equal(res.ranked[cols], duck.ranked[cols], check_dtype=False)
        assert res.counts == duck.counts
        del res
        gc.collect()
    finally:
        with engine.begin() as c:
            c.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()
