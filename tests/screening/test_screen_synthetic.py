"""The synthetic OMOP generator, vocabulary mapping, and the evaluation metrics."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from alpsdx.cli import _register_all, app
from alpsdx.errors import InputError
from alpsdx.screening.backends import open_omop
from alpsdx.screening.evaluate import evaluate, read_truth
from alpsdx.screening.screen import ScreenResult, run_screen
from alpsdx.screening.synthetic import generate

N = 1500
RATE = 0.03


@pytest.fixture(scope="module")
def source_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("syn") / "source"
    generate(out, persons=N, alps_rate=RATE, seed=11, measurements_per_person=8, chunk_persons=700)
    return out


@pytest.fixture(scope="module")
def source_result(source_only: Path) -> ScreenResult:
    return run_screen(open_omop(source_only))


def test_generator_is_reproducible_and_plants_at_the_rate(tmp_path: Path, source_only: Path) -> None:
    again = generate(tmp_path / "again", persons=N, alps_rate=RATE, seed=11, measurements_per_person=8,
                     chunk_persons=700)
    a = pd.read_parquet(source_only / "measurement")
    b = pd.read_parquet(tmp_path / "again" / "measurement")
    pd.testing.assert_frame_equal(a, b)
    truth = read_truth(source_only / "truth.csv")
    assert len(truth) == again.planted
    assert 0.01 < again.planted / N < 0.06  # binomial(1500, 0.03): mean 45
    assert (a.measurement_concept_id == 0).all() and not (tmp_path / "again" / "concept").exists()
    conds = pd.read_parquet(source_only / "condition_occurrence")
    # confounders are present: ITP, Evans syndrome, lymphoma, reactive lymphadenopathy
    for code in ("D69.3", "C83.30", "R59.0", "D89.82"):
        assert (conds.condition_source_value == code).any()
    with pytest.raises(InputError, match="not empty"):
        generate(source_only, persons=10)
    with pytest.raises(InputError):
        generate(tmp_path / "bad", persons=0)


def test_vocabulary_mapping_finds_the_same_persons(tmp_path: Path, source_result: ScreenResult) -> None:
    # the same records with concept ids, vocabulary tables and *no* source values: only
    # 'Maps to' + concept_ancestor can find them (some AIHA records use a concept below AIHA)
    folder = tmp_path / "vocab"
    generate(folder, persons=N, alps_rate=RATE, seed=11, measurements_per_person=8, chunk_persons=700,
             vocabulary=True, blank_source_values=True)
    omop = open_omop(folder)
    assert omop.has_vocabulary and omop.has_ancestor
    conds = pd.read_parquet(folder / "condition_occurrence")
    assert conds.condition_source_value.isna().all()
    res = run_screen(omop)
    assert res.mode == "vocabulary"
    cols = ["person_id", "score", "flag_day", "cytopenia_lineages", "igg_max_mg_dl", "steroid_ivig_courses"]
    pd.testing.assert_frame_equal(res.ranked[cols].reset_index(drop=True),
                                  source_result.ranked[cols].reset_index(drop=True), check_dtype=False)
    assert res.counts == source_result.counts


def test_evaluation_against_planted_cases(source_only: Path, source_result: ScreenResult) -> None:
    truth = read_truth(source_only / "truth.csv")
    ev = evaluate(source_result, truth=truth, ks=(5, 20))
    planted = set(truth.person_id)
    flagged = set(source_result.people.person_id[source_result.people.score >= 5])
    assert ev.cases == len(planted)
    assert ev.flagged_cases == len(planted & flagged)
    assert ev.sensitivity == pytest.approx(len(planted & flagged) / len(planted))
    top5 = source_result.ranked.head(5).person_id
    assert ev.precision_at_k[5] == pytest.approx(top5.isin(planted).mean())
    # quality floor for the planted phenotype (fails if a feature silently stops working)
    assert ev.sensitivity >= 0.6
    assert ev.precision_at_k[5] >= 0.8
    dx = truth[truth.diagnosis_date.notna()]
    assert ev.diagnosed_cases == len(dx)
    assert ev.flagged_before_diagnosis >= 1
    assert ev.lead_time_months["median"] is not None and ev.lead_time_months["median"] > 0


def test_evaluation_without_truth_uses_diagnosis_codes(source_result: ScreenResult) -> None:
    ev = evaluate(source_result)
    assert ev.truth_source.startswith("ALPS diagnosis codes")
    assert ev.cases == source_result.counts["excluded_already_diagnosed_alps"]
    assert all(v is None for v in ev.precision_at_k.values())


def test_read_truth_rejects_bad_files(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("id\n1\n")
    with pytest.raises(InputError, match="person_id"):
        read_truth(p)
    p.write_text("person_id\nabc\n")
    with pytest.raises(InputError, match="integer"):
        read_truth(p)
    with pytest.raises(InputError, match="not found"):
        read_truth(tmp_path / "missing.csv")


def test_cli_synth_and_evaluate(tmp_path: Path) -> None:
    _register_all()
    runner = CliRunner()
    out = tmp_path / "w"
    r = runner.invoke(app, ["screen", "synth", str(out), "--persons", "400", "--alps-rate", "0.05",
                            "--format", "csv", "--seed", "3", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert (out / "measurement.csv").is_file() and (out / "truth.csv").is_file()
    r = runner.invoke(app, ["screen", "evaluate", "--omop", str(out), "--k", "5", "--json", "--no-progress"])
    assert r.exit_code == 0, r.output
    import json

    d = json.loads(r.stdout)
    assert d["truth"] == "truth file"
    assert d["cases"] == len(pd.read_csv(out / "truth.csv"))
    assert set(d) >= {"sensitivity", "precision_at_k", "lead_time_months"}


def test_resolution_follows_maps_to_and_ancestors(tmp_path: Path) -> None:
    from alpsdx.screening.concepts import resolve

    folder = tmp_path / "v"
    generate(folder, persons=20, alps_rate=0.5, seed=1, vocabulary=True)
    concept = pd.read_parquet(folder / "concept")
    cid = dict(zip(concept.concept_code, concept.concept_id, strict=True))
    rc = resolve(open_omop(folder))
    aiha = set(rc.condition_ids.concept_id[rc.condition_ids.set_id == "aiha"])
    # D59.11 -> 'Maps to' its standard concept; the warm-AIHA concept only via concept_ancestor
    assert {cid["STD-D59.11"], cid["STD-D59.12"], cid["STD-warm-AIHA"]} <= aiha
    lp = set(rc.condition_ids.concept_id[rc.condition_ids.set_id == "lymphadenopathy"])
    assert cid["STD-R59.1"] in lp and cid["STD-R16.1"] not in lp
    drugs = rc.drug_ids
    assert cid["SCD-prednisone"] in set(drugs.concept_id[drugs.set_id == "corticosteroid"])
    assert cid["SCD-sirolimus"] in set(drugs.concept_id[drugs.set_id == "sirolimus"])
    units = dict(zip(rc.unit_concepts.unit, rc.unit_concepts.unit_concept_id, strict=True))
    assert units["g/dL"] == cid["g/dL"]
    # without concept_ancestor, the warm-AIHA concept is no longer reachable
    for f in (folder / "concept_ancestor").iterdir():
        f.unlink()
    (folder / "concept_ancestor").rmdir()
    rc2 = resolve(open_omop(folder))
    assert cid["STD-warm-AIHA"] not in set(rc2.condition_ids.concept_id)
    assert cid["STD-D59.11"] in set(rc2.condition_ids.concept_id)
