"""OMOP input: folders of CSV/Parquet, DuckDB files, clear errors for missing tables/columns, CLI."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from alpsdx.cli import _register_all, app
from alpsdx.errors import OMOPError
from alpsdx.screening.backends import open_omop
from alpsdx.screening.omop import CLINICAL_TABLES, REQUIRED_COLUMNS
from alpsdx.screening.screen import run_screen
from conftest import cond, person

EXTRACT = Path(__file__).resolve().parents[1] / "data" / "omop" / "source_only"


def test_missing_tables_are_listed_with_the_columns_needed(omop_dir: Callable[..., Path]) -> None:
    folder = omop_dir({"person": [person(1)]}, tables=("person", "condition_occurrence", "measurement"))
    with pytest.raises(OMOPError) as err:
        open_omop(folder)
    msg = str(err.value)
    for missing in ("observation_period", "drug_exposure", "procedure_occurrence", "observation"):
        assert missing in msg
    assert "drug_exposure_start_date" in msg and "OMOP CDM v5.4" in msg
    assert "person, " not in msg.split("lacks table(s)")[1].split("(got")[0]


def test_missing_columns_are_listed(omop_dir: Callable[..., Path]) -> None:
    folder = omop_dir({"person": [person(1)]})
    pd.DataFrame({"person_id": [1], "measurement_date": ["2020-01-01"]}).to_parquet(folder / "measurement.parquet")
    with pytest.raises(OMOPError) as err:
        open_omop(folder)
    e = err.value
    assert e.field == "measurement"
    for col in ("measurement_concept_id", "value_as_number", "unit_source_value", "measurement_source_value"):
        assert col in e.message
    assert "measurement_date" not in e.message


def test_not_a_folder_or_file_and_unknown_backend(tmp_path: Path) -> None:
    with pytest.raises(OMOPError, match="no such folder or file"):
        open_omop(tmp_path / "nope")
    with pytest.raises(OMOPError, match="unknown backend"):
        open_omop(tmp_path, backend="oracle")
    (tmp_path / "x.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(OMOPError, match="cannot open DuckDB file"):
        open_omop(tmp_path / "x.db")


def test_partial_vocabulary_falls_back_to_source_codes(omop_dir: Callable[..., Path]) -> None:
    folder = omop_dir({"person": [person(1)], "condition_occurrence": [cond(1, "R59.1", "2019-01-01")]})
    pd.DataFrame({"concept_id": [1], "concept_name": ["x"], "vocabulary_id": ["ICD10CM"],
                  "concept_class_id": [""], "standard_concept": [None], "concept_code": ["R59.1"]}
                 ).to_parquet(folder / "concept.parquet")
    omop = open_omop(folder)
    assert not omop.has_vocabulary
    assert any("only concept" in n for n in omop.notes)
    assert run_screen(omop).ranked.person_id.tolist() == [1]


def _check_extract(res: object) -> None:
    ranked = res.ranked  # type: ignore[attr-defined]
    counts = res.counts  # type: ignore[attr-defined]
    assert ranked.person_id.tolist() == [101, 102, 103]
    top = ranked.iloc[0]
    assert top.score == 9 and bool(top.flagged)
    assert top.flag_date == dt.date(2017, 10, 1)
    assert top.cytopenia_lineages == 2 and top.pts_igg_elevated == 1 and top.pts_family_history == 1
    assert ranked.iloc[1].score == 2 and ranked.iloc[1].steroid_ivig_courses == 1
    assert not pd.isna(ranked.iloc[1].splenectomy_first_day)
    assert ranked.iloc[2].score == 1 and ranked.iloc[2].lp_after_lymphoma == 1
    assert counts["persons_scanned"] == 4
    assert counts["excluded_already_diagnosed_alps"] == 1
    assert counts["persons_without_observation_period"] == 1
    assert counts["persons_ranked"] + counts["excluded_already_diagnosed_alps"] + counts["persons_without_evidence"] == 4


def test_source_only_csv_extract() -> None:
    res = run_screen(open_omop(EXTRACT))
    assert res.mode == "source"
    _check_extract(res)


def test_duckdb_file_input(tmp_path: Path) -> None:
    db = tmp_path / "omop.duckdb"
    con = duckdb.connect(str(db))
    for table in CLINICAL_TABLES:
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_csv('{EXTRACT / (table + '.csv')}', all_varchar=true)")
    con.close()
    res = run_screen(open_omop(db))
    assert res.source == "DuckDB file omop.duckdb"
    _check_extract(res)


def test_required_columns_cover_the_issue_tables() -> None:
    assert set(CLINICAL_TABLES) == {"person", "observation_period", "condition_occurrence", "measurement",
                                    "drug_exposure", "procedure_occurrence", "observation"}
    assert "concept" in REQUIRED_COLUMNS


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    _register_all()
    return CliRunner()


def test_cli_screen_writes_ranked_csv_and_summary(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "ranked.csv"
    summ = tmp_path / "summary.json"
    r = runner.invoke(app, ["screen", "--omop", str(EXTRACT), "--backend", "duckdb", "--top", "2",
                            "--out", str(out), "--summary", str(summ), "--no-progress"])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out)
    assert list(df.columns[:8]) == ["rank", "person_id", "score", "flagged", "flag_date", "evidence",
                                    "next_test", "citations"]
    assert df.person_id.tolist() == [101, 102]
    assert "DNT flow cytometry" in df.next_test.iloc[0]
    s = json.loads(summ.read_text())
    assert s["counts"]["persons_written"] == 2
    assert any(e["reason"].startswith("beyond --top 2") and e["persons"] == 1 for e in s["exclusions"])
    assert "persons scanned" in r.output


def test_cli_parquet_output_and_errors(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "ranked.parquet"
    r = runner.invoke(app, ["screen", "--omop", str(EXTRACT), "--out", str(out), "--no-progress", "--show", "0"])
    assert r.exit_code == 0, r.output
    assert pd.read_parquet(out).person_id.tolist() == [101, 102, 103]
    bad = tmp_path / "partial"
    shutil.copytree(EXTRACT, bad)
    (bad / "drug_exposure.csv").unlink()
    from alpsdx.cli import main

    with pytest.raises(SystemExit) as ex:
        main(["screen", "--omop", str(bad), "--no-progress"])
    assert ex.value.code == 2
    with pytest.raises(SystemExit) as ex:
        main(["screen", "--omop", str(EXTRACT), "--out", str(tmp_path / "x.xlsx"), "--no-progress"])
    assert ex.value.code == 2


def test_one_expression_without_stages_gives_the_same_features() -> None:
    from alpsdx.screening.concepts import resolve
    from alpsdx.screening.features import band_table, features, unit_table
    from alpsdx.screening.score import score_spec

    omop = open_omop(EXTRACT)
    rc = resolve(omop)
    ut = unit_table(omop, rc)
    spec = score_spec()
    bands = band_table(spec)
    staged = omop.con.execute(features(omop, rc, ut.factors, bands, spec)).sort_values("person_id")
    single = omop.con.execute(features(omop, rc, ut.factors, bands, spec, cache=False)).sort_values("person_id")
    assert len(staged) == 4
    pd.testing.assert_frame_equal(staged.reset_index(drop=True), single[staged.columns].reset_index(drop=True),
                                  check_dtype=False)


def test_unit_lookup_joins_only_on_measurement_key_columns_that_vary(tmp_path: Path) -> None:
    from alpsdx.screening.concepts import resolve
    from alpsdx.screening.features import unit_table
    from alpsdx.screening.synthetic import generate

    omop = open_omop(EXTRACT)  # concept ids 0 in every row: they cannot tell rows apart
    cols = set(unit_table(omop, resolve(omop)).factors.columns)
    assert {"l_msrc", "l_usrc"} <= cols and not {"l_cid", "l_ucid"} & cols
    folder = tmp_path / "vocab"
    generate(folder, persons=40, alps_rate=0.1, seed=3, measurements_per_person=4, vocabulary=True)
    omop = open_omop(folder)
    ut = unit_table(omop, resolve(omop))
    assert {"l_cid", "l_ucid"} <= set(ut.factors.columns)  # standard concept ids vary: joined on
    assert ut.factors.f_analyte.nunique() >= 4
