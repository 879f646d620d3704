"""Round trips through the registry, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from sqlalchemy import text

from alpsdx import knowledge
from alpsdx.errors import AuthError, InputError, NotFoundError
from alpsdx.model import (
    ApoptosisAssay,
    Case,
    Medication,
    Observation,
    Variant,
    case_from_dict,
    load_case,
)
from alpsdx.store import Actor, Registry

DOC = Actor("dr.who", "clinician", "10.0.0.7")
ROUND_TRIP_CASES = [
    "case-001-alps-fas-definitive.json",   # findings with dates, variants, medications, assays
    "case-002-alps-sfas-definitive.json",  # clinical_events / genes_tested (kept in patients.extra)
    "case-014-yaml-undated.yaml",          # age_years only, undated observations
]


def _dump(case: Case) -> dict:
    return case.model_dump(mode="json")


def test_round_trip_of_example_cases(registry: Registry, repo_examples: Path) -> None:
    for name in ROUND_TRIP_CASES:
        case = load_case(repo_examples / name)
        pid = registry.save_case(case, DOC)
        back = registry.load_case(pid, DOC)
        assert _dump(back) == _dump(case), name


def test_saving_the_same_case_twice_adds_nothing_but_an_evaluation(registry: Registry, repo_examples: Path) -> None:
    case = load_case(repo_examples / "case-001-alps-fas-definitive.json")
    pid = registry.save_case(case, DOC)
    rec1 = registry.patient_record(pid, DOC)
    assert registry.save_case(case, DOC) == pid
    rec2 = registry.patient_record(pid, DOC)
    assert len(rec2["observations"]) == len(rec1["observations"]) == len(case.observations)
    assert len(rec2["findings_history"]) == len(rec1["findings_history"])
    assert _dump(rec2["case"]) == _dump(case)
    hist = registry.evaluations(pid, DOC)
    assert len(hist) == 2
    assert hist[0]["id"] > hist[1]["id"]  # newest first
    assert {h["kb_version"] for h in hist} == {knowledge.kb_version()}
    assert [h["trigger"] for h in hist] == ["save_case", "save_case"]


def test_evaluation_is_stored_with_kb_version_and_reproducible_input(registry: Registry, repo_examples: Path) -> None:
    case = load_case(repo_examples / "case-001-alps-fas-definitive.json")
    pid = registry.save_case(case, DOC)
    full = registry.evaluations(pid, DOC, full=True)[0]
    assert full["kb_version"] == knowledge.kb_version()
    assert full["result"]["kb_version"] == knowledge.kb_version()
    assert full["evaluation_date"] == "2025-06-01"  # the case's own date, not today
    stored = case_from_dict(full["case"], "stored")
    assert _dump(stored) == _dump(case)
    from alpsdx.engine import assess

    again = assess(stored, criteria="all", date=dt.date(2025, 6, 1))
    assert again["category"] == full["category"]
    assert registry.patient_record(pid, DOC)["evaluation"]["category"] == full["category"]
    assert registry.check(reproduce=True)["evaluations_mismatched"] == 0


def test_observation_keeps_original_value_and_unit(registry: Registry) -> None:
    pid = registry.create_patient(Case(id="p-obs", sex="female", age_years=10), DOC)
    registry.add_observations(pid, [
        Observation(analyte="hemoglobin", value=89, unit="g/L", date=dt.date(2025, 5, 1), source="lab A"),
        Observation(analyte="igg", value=12.5, unit="g/L", date=dt.date(2025, 5, 2)),
    ], DOC)
    rows = registry.patient_record(pid, DOC)["observations"]
    hb = next(r for r in rows if r["analyte"] == "hemoglobin")
    assert (hb["value"], hb["unit"]) == (89, "g/L")
    assert hb["canonical_unit"] == "g/dL"
    assert hb["canonical_value"] == pytest.approx(8.9)
    assert hb["recorded_by"] == "dr.who" and hb["source"] == "lab A"
    igg = next(r for r in rows if r["analyte"] == "igg")
    assert (igg["canonical_value"], igg["canonical_unit"]) == (pytest.approx(1250), "mg/dL")
    # The case handed back keeps the reported unit, not the canonical one.
    obs = {o.analyte: o for o in registry.load_case(pid, DOC).observations}
    assert (obs["hemoglobin"].value, obs["hemoglobin"].unit) == (89, "g/L")


def test_series_is_dated_canonical_and_ordered(registry: Registry) -> None:
    pid = registry.create_patient(Case(id="p-series", age_years=8), DOC)
    registry.add_observations(pid, [
        Observation(analyte="hemoglobin", value=100, unit="g/L", date=dt.date(2025, 3, 1)),
        Observation(analyte="hemoglobin", value=9.0, unit="g/dL", date=dt.date(2025, 1, 1)),
        Observation(analyte="platelets", value=45, unit="10*9/L", date=dt.date(2025, 2, 1)),
    ], DOC)
    pts = registry.series(pid, ["hemoglobin"], DOC)
    assert [(p["date"], p["value"]) for p in pts] == [(dt.date(2025, 1, 1), pytest.approx(9.0)),
                                                      (dt.date(2025, 3, 1), pytest.approx(10.0))]


def test_findings_keep_their_history(registry: Registry) -> None:
    pid = registry.create_patient(Case(id="p-find", age_years=6), DOC)
    registry.set_findings(pid, {"splenomegaly": {"present": False}}, DOC)
    registry.set_findings(pid, {"splenomegaly": {"present": True, "onset": "2024-01-10"}}, DOC)
    registry.set_findings(pid, {"splenomegaly": {"present": True, "onset": "2024-01-10"}}, DOC)  # unchanged
    rec = registry.patient_record(pid, DOC)
    hist = [h for h in rec["findings_history"] if h["name"] == "splenomegaly"]
    assert [h["present"] for h in hist] == [False, True]
    assert rec["case"].findings.splenomegaly is not None
    assert rec["case"].findings.splenomegaly.present is True
    assert rec["case"].findings.splenomegaly.onset == dt.date(2024, 1, 10)
    assert [h["trigger"] for h in registry.evaluations(pid, DOC)] == ["finding", "finding", "finding", "create"]


def test_variants_medications_assays_round_trip(registry: Registry) -> None:
    pid = registry.create_patient(Case(id="p-adds", sex="male", birth_date=dt.date(2015, 1, 1)), DOC)
    v = Variant(gene="fas", hgvs_c="NM_000043.6:c.779A>G", hgvs_p="p.Asp260Gly", origin="germline",
                zygosity="heterozygous", classification="pathogenic", vaf=0.48, date=dt.date(2025, 1, 5))
    m = Medication(name="Sirolimus", dose_mg=1.5, frequency="daily", start=dt.date(2025, 3, 1))
    a = ApoptosisAssay(result="defective", date=dt.date(2025, 2, 1), pct_of_control=12.0, lab="NIH")
    registry.add_variant(pid, v, DOC)
    registry.add_medication(pid, m, DOC)
    registry.add_assay(pid, a, DOC)
    back = registry.load_case(pid, DOC)
    assert back.variants == [v] and back.variants[0].gene == "FAS"
    assert back.medications == [m] and back.medications[0].name == "sirolimus"
    assert back.apoptosis_assays == [a]


def test_uploaded_file_is_content_addressed_and_checked(registry: Registry) -> None:
    pid = registry.create_patient(Case(id="p-file", age_years=12), DOC)
    data = b"FCS3.1    synthetic bytes for the store test"
    obs = [Observation(analyte="dnt_pct_lymphocytes", value=3.1, unit="%", date=dt.date(2025, 4, 1), source="fcs")]
    fid = registry.add_file(pid, "fcs", "../../etc/tube 1.fcs", data, DOC, result={"dnt_pct_lymphocytes": 3.1},
                            observations=obs)
    info = registry.file_info(pid, fid, DOC)
    assert info["sha256"] == hashlib.sha256(data).hexdigest()
    assert info["size"] == len(data)
    assert info["filename"] == "tube 1.fcs"  # no directory parts kept
    assert info["path"].read_bytes() == data
    assert info["result"] == {"dnt_pct_lymphocytes": 3.1}
    rec = registry.patient_record(pid, DOC)
    assert [o["file_id"] for o in rec["observations"]] == [fid]
    assert registry.check()["ok"] is True
    info["path"].write_bytes(data + b"tampered")
    report = registry.check()
    assert report["ok"] is False
    assert report["problems"] == [f"file {fid}: content does not match its SHA-256"]
    with pytest.raises(NotFoundError):
        registry.file_info(pid + 1, fid, DOC)  # a file is reachable only through its own patient


def test_bad_input_is_typed(registry: Registry) -> None:
    pid = registry.create_patient(Case(id="p-bad"), DOC)
    with pytest.raises(InputError) as err:
        registry.create_patient(Case(id="p-bad"), DOC)
    assert err.value.field == "id"
    with pytest.raises(InputError) as err:
        registry.set_findings(pid, {"splenomegally": {"present": True}}, DOC)
    assert "splenomegally" in str(err.value)
    with pytest.raises(InputError) as err:
        registry.add_file(pid, "pdf", "x.pdf", b"x", DOC)
    assert (err.value.field, err.value.value) == ("kind", "pdf")
    with pytest.raises(NotFoundError) as err:
        registry.load_case(pid + 100, DOC)
    assert (err.value.field, err.value.value) == ("patient_id", pid + 100)
    with pytest.raises(NotFoundError):
        registry.add_observation(pid + 100, Observation(analyte="igg", value=1, unit="g/L"), DOC)
    with pytest.raises(NotFoundError):  # beyond any 64-bit id: not found, never an overflow crash
        registry.load_case(2**70, DOC)
    with pytest.raises(NotFoundError):
        registry.file_info(pid, 2**64, DOC)


def test_list_and_search(registry: Registry) -> None:
    a = registry.create_patient(Case(id="MRN-0001", sex="female"), DOC)
    b = registry.create_patient(Case(id="MRN-0002", sex="male"), DOC)
    rows = registry.list_patients(DOC)
    assert [r["id"] for r in rows] == [b, a]  # most recently updated first
    assert all(r["category"] for r in rows)
    assert [r["id"] for r in registry.list_patients(DOC, q="0001")] == [a]
    assert [r["id"] for r in registry.list_patients(DOC, q="male")] == [b]  # sex matches exactly
    cat = rows[0]["category"]
    assert {r["id"] for r in registry.list_patients(DOC, q=cat)} == {a, b}
    assert registry.list_patients(DOC, q="nothing-like-this") == []
    assert registry.count_patients() == 2
    assert registry.find_patient_id("MRN-0002", DOC) == b
    assert registry.find_patient_id("MRN-9999", DOC) is None


def test_users_passwords_and_roles(registry: Registry) -> None:
    uid = registry.create_user("ana", "long enough pw", "clinician")
    user = registry.authenticate("ana", "long enough pw", "10.1.1.1")
    assert user == {"id": uid, "username": "ana", "role": "clinician"}
    with pytest.raises(AuthError):
        registry.authenticate("ana", "wrong password")
    with pytest.raises(AuthError):
        registry.authenticate("nobody", "long enough pw")
    with pytest.raises(InputError) as err:
        registry.create_user("ana", "another password", "viewer")
    assert err.value.field == "username"
    with pytest.raises(InputError) as err:
        registry.create_user("bo", "short", "viewer")
    assert err.value.field == "password"
    with pytest.raises(InputError) as err:
        registry.create_user("bo", "long enough pw", "superuser")
    assert (err.value.field, err.value.value) == ("role", "superuser")
    registry.set_role(uid, "viewer", active=False)
    with pytest.raises(AuthError):  # a disabled account cannot log in
        registry.authenticate("ana", "long enough pw")
    assert [(u["username"], u["role"], u["active"]) for u in registry.list_users()] == [("ana", "viewer", False)]
    with registry.engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM users")).scalar()
    assert stored.startswith("$argon2id$") and "long enough pw" not in stored


def test_sessions_expire_and_end(registry: Registry) -> None:
    uid = registry.create_user("cy", "long enough pw", "admin")
    token, csrf = registry.create_session(uid)
    user, csrf_back = registry.session_user(token)
    assert user["username"] == "cy" and csrf_back == csrf
    assert registry.session_user(token + "x") is None
    registry.delete_session(token, Actor("cy", "admin"))
    assert registry.session_user(token) is None
    old, _ = registry.create_session(uid, ttl=dt.timedelta(seconds=-1))
    assert registry.session_user(old) is None
    with registry.engine.connect() as conn:  # the expired row was removed, the token never stored
        assert conn.execute(text("SELECT count(*) FROM sessions")).scalar() == 0
    live, _ = registry.create_session(uid)
    with registry.engine.connect() as conn:
        keys = [r[0] for r in conn.execute(text("SELECT token_sha256 FROM sessions"))]
    assert keys == [hashlib.sha256(live.encode()).hexdigest()]


def test_every_observation_field_round_trips(registry: Registry) -> None:
    """tcrab_gated has a column; reference_range (and any later model field) rides in ``extra``."""
    pid = registry.create_patient(Case(id="p-fields", age_years=15), DOC)
    obs = [
        Observation(analyte="dnt_pct_lymphocytes", value=2.9, unit="%", date=dt.date(2025, 4, 1), tcrab_gated=False),
        Observation(analyte="hemoglobin", value=10.1, unit="g/dL", date=dt.date(2025, 4, 1),
                    reference_range={"low": 11.5, "high": 15.5}),
    ]
    registry.add_observations(pid, obs, DOC)
    assert registry.load_case(pid, DOC).observations == obs
    rows = registry.patient_record(pid, DOC)["observations"]
    assert [r["tcrab_gated"] for r in rows] == [False, None]
    assert rows[1]["reference_range"] == {"low": 11.5, "high": 15.5}
    with registry.engine.connect() as conn:
        stored = conn.execute(text("SELECT tcrab_gated FROM observations ORDER BY id")).scalars().all()
    assert [None if v is None else bool(v) for v in stored] == [False, None]
    # Merging the same case again recognises both as already on record.
    registry.save_case(registry.load_case(pid, DOC), DOC)
    assert len(registry.patient_record(pid, DOC)["observations"]) == 2
