"""Where the OMOP tables live and which engine runs the screen.

* DuckDB, embedded (default): a folder of Parquet/CSV files (one file or one folder of
  Parquet parts per table, e.g. ``measurement.parquet`` or ``measurement/*.parquet`` or
  ``MEASUREMENT.csv``) or a DuckDB database file.
* PySpark (``backend="spark"``): the same folder read by Spark, or tables of a Spark catalog
  database; ``local[2]`` by default, any master URL for a cluster.

Both run the identical Ibis expression built in :mod:`alpsdx.screening.features`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import ibis

from alpsdx.errors import OMOPError
from alpsdx.screening.omop import CLINICAL_TABLES, VOCABULARY_TABLES, OmopTables, validate

__all__ = ["BACKENDS", "connect_duckdb", "connect_spark", "open_omop"]

BACKENDS = ("duckdb", "spark")
_TABLES = (*CLINICAL_TABLES, *VOCABULARY_TABLES)


def connect_duckdb(database: str | None = None, *, threads: int | None = None) -> Any:
    """An Ibis DuckDB connection (in memory unless ``database`` is a file, then read-only)."""
    kwargs: dict[str, Any] = {}
    if threads:
        kwargs["threads"] = threads
    if database is None:
        return ibis.duckdb.connect(**kwargs)
    return ibis.duckdb.connect(database, read_only=True, **kwargs)


def connect_spark(master: str = "local[2]", *, shuffle_partitions: int = 4) -> Any:
    """An Ibis PySpark connection on a (new or running) SparkSession at ``master``."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - pyspark is a declared extra
        raise OMOPError(
            "the spark backend needs pyspark", field="backend", value="spark",
            expected="pip install 'alpsdx[spark]' and a Java runtime",
        ) from exc
    os.environ.setdefault("PYSPARK_PYTHON", os.environ.get("PYSPARK_PYTHON", "python3"))
    session = (
        SparkSession.builder.master(master)
        .appName("alpsdx-screen")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", os.environ.get("ALPSDX_SPARK_DRIVER_MEMORY", "2g"))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return ibis.pyspark.connect(session)


def _duckdb_tables(con: Any, database: str | None) -> list[str]:
    """Table and view names in a schema of a DuckDB file (``main`` by default).

    Read from information_schema directly: portable across DuckDB releases.
    """
    cur = con.raw_sql(
        "SELECT DISTINCT table_name FROM information_schema.tables WHERE table_schema = ?",
        parameters=[database or "main"],
    )
    return [str(r[0]) for r in cur.fetchall()]


def _find_files(folder: Path) -> dict[str, Path]:
    """Table name -> file or folder, matching names case-insensitively."""
    found: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        name = entry.name.lower()
        for suffix in (".parquet", ".csv.gz", ".csv", ""):
            if suffix and not name.endswith(suffix):
                continue
            stem = name[: len(name) - len(suffix)] if suffix else name
            if stem in _TABLES and stem not in found:
                if suffix == "" and not (entry.is_dir() and any(entry.glob("*.parquet"))):
                    continue
                found[stem] = entry
            break
    return found


def _read_folder(con: Any, backend: str, folder: Path) -> dict[str, Any]:
    files = _find_files(folder)
    raw: dict[str, Any] = {}
    for name, path in files.items():
        tname = f"omop_{name}"
        is_csv = path.name.lower().endswith((".csv", ".csv.gz"))
        if backend == "duckdb":
            if is_csv:
                # all text, cast by omop.normalise_table: codes such as 38100 stay codes
                raw[name] = con.read_csv(str(path), table_name=tname, all_varchar=True)
            else:
                target = str(path / "*.parquet") if path.is_dir() else str(path)
                raw[name] = con.read_parquet(target, table_name=tname)
        else:
            if is_csv:
                raw[name] = con.read_csv(str(path), table_name=tname, header=True)
            else:
                raw[name] = con.read_parquet(str(path), table_name=tname)
    return raw


def open_omop(
    location: str | os.PathLike[str],
    *,
    backend: str = "duckdb",
    con: Any = None,
    spark_master: str = "local[2]",
    database: str | None = None,
) -> OmopTables:
    """Open an OMOP warehouse and return its validated, type-normalised tables.

    ``location``: a folder of Parquet/CSV files, a DuckDB file (duckdb backend), or a Spark
    catalog database name (spark backend). ``database``: the schema inside a DuckDB file.
    """
    if backend not in BACKENDS:
        raise OMOPError("unknown backend", field="backend", value=backend,
                        expected=" or ".join(BACKENDS))
    path = Path(location)
    notes: list[str] = []
    if "://" in str(location):
        # any engine Ibis reaches, by URL: postgres://..., trino://..., bigquery://..., duckdb:///file
        try:
            con = con or ibis.connect(str(location))
            names = con.list_tables(database=database) if database else con.list_tables()
        except Exception as exc:
            raise OMOPError(f"cannot connect: {type(exc).__name__}", field="omop",
                            value=str(location).split("@")[-1],
                            expected="an Ibis connection URL such as postgres://user@host/db") from exc
        raw = {n.lower(): con.table(n, database=database) for n in names if n.lower() in _TABLES}
        tables = validate(raw, source=f"{con.name} database", notes=notes)
        return OmopTables(con=con, tables=tables, source=f"{con.name} database", backend=con.name, notes=notes)
    if path.is_dir():
        con = con or (connect_duckdb() if backend == "duckdb" else connect_spark(spark_master))
        raw = _read_folder(con, backend, path)
        source = f"folder {path.name}"
    elif path.is_file():
        if backend != "duckdb":
            raise OMOPError("a database file can only be read with the duckdb backend",
                            field="omop", value=str(location),
                            expected="--backend duckdb, or a folder / Spark catalog database for spark")
        try:
            con = con or connect_duckdb(str(path))
        except Exception as exc:  # duckdb.IOException and friends
            raise OMOPError(f"cannot open DuckDB file: {exc}", field="omop", value=path.name,
                            expected="a DuckDB database file holding OMOP CDM tables") from exc
        names = _duckdb_tables(con, database)
        raw = {n.lower(): con.table(n, database=database) for n in names if n.lower() in _TABLES}
        source = f"DuckDB file {path.name}"
    elif backend == "spark":
        con = con or connect_spark(spark_master)
        db = str(location)
        try:
            names = con.list_tables(database=db)
        except Exception as exc:
            raise OMOPError("no such folder or Spark catalog database", field="omop", value=db,
                            expected="a folder of OMOP Parquet/CSV files or a catalog database") from exc
        raw = {n.lower(): con.table(n, database=db) for n in names if n.lower() in _TABLES}
        source = f"Spark catalog database {db}"
    else:
        raise OMOPError("no such folder or file", field="omop", value=str(location),
                        expected="a folder of OMOP CDM Parquet/CSV files or a DuckDB file")
    tables = validate(raw, source=source, notes=notes)
    return OmopTables(con=con, tables=tables, source=source, backend=backend, notes=notes)
