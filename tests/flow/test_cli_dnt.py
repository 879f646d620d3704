"""``alpsdx dnt``: verbs, flags, output formats, exit codes, --case and the batch mode."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from alpsdx.cli import main
from alpsdx.flow.synthetic import SyntheticSpec, write_synthetic


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("dnt")
    batch = d / "batch"
    batch.mkdir()
    files = {}
    for name, pct, seed in (("a_high", 5.0, 31), ("b_low", 0.5, 32)):
        p = batch / f"{name}.fcs"
        write_synthetic(p, SyntheticSpec(n_events=25_000, dnt_pct_lymphocytes=pct, seed=seed))
        files[name] = p
    files["batch"] = batch
    return files


def test_json_one_object_per_sample(samples, capsys):
    code, out, err = run(["dnt", str(samples["a_high"]), "--format", "json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data, list) and len(data) == 1
    s = data[0]
    for key in ("file", "events", "dnt_pct_lymphocytes", "dnt_pct_cd3", "dnt_pct_tcrab",
                "dnt_pct_lymphocytes_ci", "dnt_pct_cd3_ci", "dnt_pct_tcrab_ci", "qc"):
        assert key in s
    assert s["events"] == 25_000 and s["file"].endswith("a_high.fcs")
    assert abs(s["dnt_pct_lymphocytes"] - 5.0) <= 0.25
    lo, hi = s["dnt_pct_lymphocytes_ci"]
    assert lo < s["dnt_pct_lymphocytes"] < hi
    assert isinstance(s["qc"], list)


def test_folder_is_a_parallel_batch(samples, capsys):
    code, out, err = run(["dnt", str(samples["batch"]), "--format", "json", "--jobs", "2"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert [Path(s["file"]).name for s in data] == ["a_high.fcs", "b_low.fcs"]
    assert data[0]["dnt_pct_lymphocytes"] > data[1]["dnt_pct_lymphocytes"]


def test_csv_and_table(samples, capsys):
    code, out, _ = run(["dnt", str(samples["b_low"]), "--format", "csv"], capsys)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 1 and rows[0]["file"].endswith("b_low.fcs")
    assert float(rows[0]["dnt_pct_lymphocytes_ci_low"]) < float(rows[0]["dnt_pct_lymphocytes"])
    code, out, _ = run(["dnt", str(samples["b_low"])], capsys)
    assert code == 0 and "b_low.fcs" in out and "% of lymphocytes" in out


def test_plots_one_png_per_sample(samples, tmp_path, capsys):
    plots = tmp_path / "plots"
    code, out, err = run(["dnt", str(samples["batch"]), "--plots", str(plots), "--format", "json",
                          "--jobs", "2"], capsys)
    assert code == 0, err
    pngs = sorted(p.name for p in plots.glob("*.png"))
    assert pngs == ["a_high.dnt.png", "b_low.dnt.png"]
    assert all(Path(s["plot"]).exists() for s in json.loads(out))


def test_case_append_feeds_evaluate(samples, tmp_path, capsys):
    case = tmp_path / "case.json"
    # the DNT criterion needs a normal or raised lymphocyte count beside it (an adult: the
    # knowledge base cites an adult lymphocyte range)
    case.write_text(json.dumps({"id": "c-1", "sex": "male", "age_years": 30,
                                "evaluation_date": "2025-06-01",
                                "observations": [{"analyte": "lymphocytes_abs", "value": 3.1,
                                                  "unit": "10*9/L", "date": "2025-05-20"}]}))
    code, _, err = run(["dnt", str(samples["a_high"]), "--case", str(case), "--format", "json"],
                       capsys)
    assert code == 0 and "3 observation(s) added" in err
    data = json.loads(case.read_text())
    obs = {o["analyte"]: o for o in data["observations"][1:]}
    assert data["observations"][0]["analyte"] == "lymphocytes_abs"
    assert set(obs) == {"dnt_pct_lymphocytes", "dnt_pct_cd3", "dnt_pct_tcrab"}
    assert all(o["date"] == "2025-05-20" and o["unit"] == "%" and o["tcrab_gated"] is True
               for o in obs.values())
    code, _, err = run(["dnt", str(samples["a_high"]), "--case", str(case)], capsys)
    assert code == 0 and "0 observation(s) added" in err  # exact repeats are skipped
    code, out, err = run(["evaluate", str(case), "--format", "json"], capsys)
    assert code == 0, err
    res = json.loads(out)
    res = res[0] if isinstance(res, list) else res
    dnt = next(c for c in res["criteria"] if c["id"] == "required.dnt")
    assert dnt["status"] == "met"
    assert {e["item"] for e in dnt["evidence"]} >= {"dnt_pct_lymphocytes"}


def test_user_gates_and_export(samples, tmp_path, capsys):
    gml_dir = tmp_path / "gml"
    code, out, err = run(["dnt", str(samples["a_high"]), "--export-gates", str(gml_dir),
                          "--format", "json"], capsys)
    assert code == 0, err
    auto = json.loads(out)[0]
    xml = gml_dir / "a_high.gating-ml.xml"
    assert Path(auto["gating_ml"]) == xml and xml.exists()
    code, out, err = run(["dnt", str(samples["a_high"]), "--gates", str(xml), "--dnt-gate", "dnt",
                          "--format", "json"], capsys)
    assert code == 0, err
    user = json.loads(out)[0]
    for k in ("dnt_pct_lymphocytes", "dnt_pct_cd3", "dnt_pct_tcrab"):
        assert user[k] == auto[k]
    assert user["method"] == "gates:a_high.gating-ml.xml"
    assert user["dnt_definition"].startswith("the laboratory's gate")
    plots = tmp_path / "uplots"
    code, out, err = run(["dnt", str(samples["a_high"]), "--gates", str(xml), "--dnt-gate", "dnt",
                          "--plots", str(plots), "--format", "json"], capsys)
    assert code == 0, err
    assert (plots / "a_high.dnt.png").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["dnt", "/nonexistent/x.fcs"], "file not found"),
        (["dnt", "{a}", "--channel", "CD3"], "MARKER=CHANNEL"),
        (["dnt", "{a}", "--channel", "CD3=NOPE-A"], "no such channel"),
        (["dnt", "{a}", "--dnt-gate", "dnt"], "--dnt-gate needs --gates"),
        (["dnt", "{a}", "--gates", "/nonexistent/g.xml", "--dnt-gate", "x"], "gate file not found"),
        (["dnt", "{a}", "--case", "/nonexistent/case.json"], "case file not found"),
        (["dnt", "{a}", "--format", "xml"], "xml"),
        (["dnt", "{a}", "--dataset", "3"], "data set"),
    ],
)
def test_bad_input_exit_2_one_line(samples, capsys, args, needle):
    argv = [a.replace("{a}", str(samples["a_high"])) for a in args]
    code, _out, err = run(argv, capsys)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err
    assert len([ln for ln in err.splitlines() if ln.strip().startswith("error")]) <= 1


def test_malformed_file_in_batch(samples, tmp_path, capsys):
    bad = tmp_path / "bad.fcs"
    bad.write_bytes(samples["b_low"].read_bytes()[:5000])
    code, out, err = run(["dnt", str(samples["b_low"]), str(bad), "--format", "json"], capsys)
    assert code == 2
    assert [Path(s["file"]).name for s in json.loads(out)] == ["b_low.fcs"]
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "bad.fcs" in lines[0] and "$ENDDATA" in lines[0]


@pytest.mark.shared
def test_multi_dataset_file_with_offset_bug(shared_data, capsys):
    """coulter.lmd: two data sets and the off-by-one DATA end; refused unless told,
    then data set 1 runs (markers named by --channel: the file has no $PnS)."""
    f = str(shared_data / "flowkit" / "multi_dataset_fcs" / "coulter.lmd")
    code, _, err = run(["dnt", f], capsys)
    assert code == 2 and "--ignore-offset-error" in err
    code, out, err = run(["dnt", f, "--dataset", "1", "--ignore-offset-error", "--channel", "CD3=FL1",
                          "--channel", "CD4=FL2", "--channel", "CD8=FL3", "--format", "json"], capsys)
    assert code == 0, err
    s = json.loads(out)[0]
    assert s["n_datasets"] == 2 and s["events"] == 18_110
    assert s["markers"] == {"CD3": "FL1", "CD4": "FL2", "CD8": "FL3"}
    codes = [q["code"] for q in s["qc"]]
    assert {"several_datasets", "no_compensation", "no_singlet_gate", "tcrab_absent"} <= set(codes)


def test_future_date_is_an_input_error_only_for_case(tmp_path, capsys):
    import datetime as dt

    f = tmp_path / "future.fcs"
    future = dt.date.today() + dt.timedelta(days=400)
    write_synthetic(f, SyntheticSpec(n_events=12_000, date=future, seed=41))
    code, out, err = run(["dnt", str(f), "--format", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)[0]["date"] == future.isoformat()
    case = tmp_path / "c.json"
    case.write_text('{"id": "c"}')
    code, _, err = run(["dnt", str(f), "--case", str(case)], capsys)
    assert code == 2 and "$DATE" in err and "future" in err and "Traceback" not in err
    assert json.loads(case.read_text()) == {"id": "c"}  # untouched
