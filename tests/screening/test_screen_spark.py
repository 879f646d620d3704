"""The identical Ibis expression on PySpark (local[2]) gives the same ranking as DuckDB."""

from __future__ import annotations

import gc
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from alpsdx.screening.backends import connect_spark, open_omop
from alpsdx.screening.screen import run_screen
from alpsdx.screening.synthetic import generate

pytestmark = pytest.mark.spark


def _java_available() -> bool:
    java_home = os.environ.get("JAVA_HOME")
    return shutil.which("java") is not None or bool(java_home and Path(java_home, "bin", "java").exists())


@pytest.fixture(scope="module")
def spark_con() -> Iterator[Any]:
    pytest.importorskip("pyspark")
    if not _java_available():
        pytest.skip("Spark needs a Java runtime (java not found)")
    con = connect_spark("local[2]", shuffle_partitions=2)
    yield con
    gc.collect()  # release the cached stage tables while the session is alive
    con._session.stop()


def test_duckdb_and_spark_rank_identically(tmp_path: Path, spark_con: Any) -> None:
    folder = tmp_path / "w"
    generate(folder, persons=150, alps_rate=0.1, seed=5, measurements_per_person=6, vocabulary=True)
    duck = run_screen(open_omop(folder))
    spark = run_screen(open_omop(folder, backend="spark", con=spark_con))
    assert spark.backend == "spark" and duck.backend == "duckdb"
    assert spark.mode == duck.mode == "vocabulary"
    assert len(duck.ranked) >= 10
    cols = ["rank", "person_id", "score", "flag_day", "cytopenia_lineages", "lp_span_days", "igg_max_mg_dl",
            "b12_max_ng_l", "steroid_ivig_courses", "evidence", "next_test"]
    pd.testing.assert_frame_equal(spark.ranked[cols].reset_index(drop=True),
                                  duck.ranked[cols].reset_index(drop=True), check_dtype=False)
    assert spark.counts == duck.counts
