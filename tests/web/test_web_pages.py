"""The patient pages: the category moves with the data entered, every change is re-evaluated
and kept, the checklist shows evidence and sources, forms name the field that is wrong."""

from __future__ import annotations

import re

import pytest
from webtools import Session, new_patient

from alpsdx.engine import assess

CATEGORY_RE = re.compile(r'id="category" data-category="([a-z_]+)"')


def category(s: Session, pid: int) -> str:
    m = CATEGORY_RE.search(s.get(f"/patients/{pid}").text)
    assert m
    return m.group(1)


def engine_category(app, pid: int) -> str:  # type: ignore[no-untyped-def]
    case = app.state.registry.load_case(pid)
    return str(assess(case, criteria="nih2009", care=False)["category"])


def test_category_moves_indeterminate_probable_definitive(app, as_role) -> None:  # type: ignore[no-untyped-def]
    s = as_role("clinician")
    pid = new_patient(s, "flow-1", sex="female", age_years="30")
    assert category(s, pid) == "indeterminate"
    r = s.post(f"/patients/{pid}/findings", {
        "lymphadenopathy.present": "yes", "lymphadenopathy.onset": "2024-01-01", "lymphadenopathy.duration_months": "12",
        "lymphadenopathy.malignancy_excluded": "yes", "lymphadenopathy.infection_excluded": "yes"})
    assert r.status_code == 303
    for analyte, value, unit in (("dnt_pct_lymphocytes", "3.0", "%"), ("lymphocytes_abs", "2.0", "10*9/L")):
        r = s.post(f"/patients/{pid}/observations", {"analyte": analyte, "value": value, "unit": unit, "date": "2025-05-01"})
        assert r.status_code == 303
    # Both required criteria met, no accessory criterion known yet.
    assert category(s, pid) == "indeterminate"
    # A secondary criterion (sFASL above the NIH 2009 threshold) -> probable.
    s.post(f"/patients/{pid}/observations", {"analyte": "sfasl", "value": "500", "unit": "pg/mL", "date": "2025-05-01"})
    assert category(s, pid) == "probable" == engine_category(app, pid)
    # A primary criterion (pathogenic germline FAS variant) -> definitive.
    s.post(f"/patients/{pid}/variants", {"gene": "FAS", "hgvs_c": "NM_000043.6:c.779A>G", "hgvs_p": "p.Asp260Gly",
                                         "origin": "germline", "zygosity": "heterozygous", "classification": "pathogenic"})
    page = s.get(f"/patients/{pid}").text
    assert CATEGORY_RE.search(page).group(1) == "definitive" == engine_category(app, pid)  # type: ignore[union-attr]
    assert 'id="subtype">ALPS-FAS<' in page
    # Every change was evaluated and kept (create, findings, 3 observations, variant).
    history = app.state.registry.evaluations(pid)
    assert [h["category"] for h in history][:3] == ["definitive", "probable", "indeterminate"]
    assert len(history) >= 6
    assert page.count("<td>clinician</td>") >= 6  # the history table names who made each change
    # A past evaluation opens as it was made: the probable one, with its knowledge-base stamp.
    probable = next(h for h in history if h["category"] == "probable")
    old = s.get(f"/patients/{pid}/evaluations/{probable['id']}").text
    assert "cat-probable" in old and probable["kb_version"] in old
    assert s.get(f"/patients/{pid}/evaluations/999999").status_code == 404


def test_patient_page_shows_checklist_evidence_and_sources(app, as_role) -> None:  # type: ignore[no-untyped-def]
    s = as_role("viewer")
    clin = as_role("clinician")
    pid = new_patient(clin, "page-1", sex="male", age_years="12")
    clin.post(f"/patients/{pid}/observations", {"analyte": "dnt_pct_cd3", "value": "6.1", "unit": "%", "date": "2025-05-20"})
    page = s.get(f"/patients/{pid}").text
    ev = app.state.registry.patient_record(pid)["evaluation"]
    for c in ev["criteria"]:
        assert f'data-criterion="{c["id"]}"' in page
    assert ev["criteria"][0]["citation_text"].split(",")[0] in page
    assert "dnt_pct_cd3</b>: 6.1 %" in page
    # Criteria sets side by side, one column per set evaluated.
    for other in ev.get("other_sets") or []:
        assert f"<th>{other['criteria_set']}</th>" in page
        col = page.split(f'data-set="{other["criteria_set"]}"', 1)[1].split('class="setcol"', 1)[0]
        assert col.count("<li class=\"row-") == len(other["criteria"])
    for section in ("next-tests", "care", "variants", "dnt", "trends", "history"):
        assert f'id="{section}"' in page


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"analyte": "igg", "value": "1200", "unit": "kg"}, "unit", "unit"),
    ({"analyte": "igg", "value": "lots", "unit": "mg/dL"}, "value", "not a number"),
    ({"analyte": "igg", "value": "", "unit": "mg/dL"}, "value", "required"),
    ({"analyte": "igg", "value": "1200", "unit": "mg/dL", "date": "2999-01-01"}, "date", "future"),
    ({"analyte": "not_an_analyte", "value": "1", "unit": "%"}, "analyte", "analyte"),
], ids=["unit", "number", "required", "future-date", "analyte"])
def test_observation_form_names_the_field(as_role, fields: dict[str, str], field: str, words: str) -> None:  # type: ignore[no-untyped-def]
    s = as_role("clinician")
    pid = new_patient(s, f"form-{field}-{len(fields)}-{words[:3]}")
    r = s.post(f"/patients/{pid}/observations", fields)
    assert r.status_code == 422
    m = re.search(rf'<span class="field-error" data-field="{field}">([^<]*)</span>', r.text)
    assert m, r.text[r.text.find('id="form-observation"'):][:1500]
    assert words in m.group(1).lower()
    # What the user typed is kept in the form.
    if fields.get("value"):
        assert f'name="value" inputmode="decimal" value="{fields["value"]}"' in r.text


def test_other_forms_name_the_field(as_role) -> None:  # type: ignore[no-untyped-def]
    s = as_role("clinician")
    pid = new_patient(s, "form-others")
    r = s.post(f"/patients/{pid}/variants", {"gene": "FAS", "vaf": "1.7"})
    assert r.status_code == 422 and 'data-field="vaf"' in r.text
    r = s.post(f"/patients/{pid}/medications", {"name": "sirolimus", "dose_mg": "-1"})
    assert r.status_code == 422 and 'data-field="dose_mg"' in r.text
    r = s.post(f"/patients/{pid}/assays", {"date": "2025-01-01"})
    assert r.status_code == 422 and 'data-field="result"' in r.text
    r = s.post(f"/patients/{pid}/findings", {"splenomegaly.duration_months": "six"})
    assert r.status_code == 422 and 'data-field="splenomegaly.duration_months"' in r.text
    r = s.post("/patients", {"id": "", "age_years": "3"})
    assert r.status_code == 422 and 'data-field="id"' in r.text
    r = s.post("/patients", {"id": "form-others"})
    assert r.status_code == 422 and "already exists" in r.text


def test_findings_form_never_erases_by_omission(app, as_role) -> None:  # type: ignore[no-untyped-def]
    s = as_role("clinician")
    pid = new_patient(s, "findings-keep")
    s.post(f"/patients/{pid}/findings", {"typical_histology": "yes"})
    s.post(f"/patients/{pid}/findings", {"splenomegaly.present": "no"})
    f = app.state.registry.load_case(pid).findings
    assert f.typical_histology is True
    assert f.splenomegaly is not None and f.splenomegaly.present is False
    s.post(f"/patients/{pid}/findings", {"cytopenias_set": "1", "autoimmune_cytopenias": ["thrombocytopenia"]})
    assert [c.value for c in app.state.registry.load_case(pid).findings.autoimmune_cytopenias or []] == ["thrombocytopenia"]


def test_patient_list_search_and_category(as_role) -> None:  # type: ignore[no-untyped-def]
    s = as_role("clinician")
    new_patient(s, "search-alpha")
    new_patient(s, "search-beta")
    page = s.get("/patients?q=alpha").text
    assert "search-alpha" in page and "search-beta" not in page
    page = s.get("/patients?q=indeterminate").text
    assert "search-alpha" in page and "cat-indeterminate" in page
    assert "No patients match" in s.get("/patients?q=zzz-nothing").text


def test_trend_plots_are_png_and_unknown_groups_404(as_role) -> None:  # type: ignore[no-untyped-def]
    s = as_role("clinician")
    pid = new_patient(s, "plots-1", age_years="8")
    s.post(f"/patients/{pid}/observations", {"analyte": "hemoglobin", "value": "9.1", "unit": "g/dL", "date": "2025-01-01"})
    s.post(f"/patients/{pid}/observations", {"analyte": "hemoglobin", "value": "10.4", "unit": "g/dL", "date": "2025-03-01"})
    for group in ("dnt", "blood", "igg", "biomarkers", "sirolimus"):
        r = s.get(f"/patients/{pid}/plots/{group}.png")
        assert r.status_code == 200
        assert r.content[:8] == b"\x89PNG\r\n\x1a\n"
    page = s.get(f"/patients/{pid}").text
    assert f'src="/patients/{pid}/plots/blood.png"' in page
    assert f'src="/patients/{pid}/plots/igg.png"' not in page  # no IgG recorded: listed, not drawn
    assert "No values recorded yet for:" in page and "Immunoglobulin G" in page
    assert s.get(f"/patients/{pid}/plots/nope.png").status_code == 404
    assert s.get("/patients/999999").status_code == 404
