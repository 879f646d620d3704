"""Fuzz the case parser (model.parse_case_text / case_from_dict / load_case) and evaluate what parses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fuzz_helpers import REPO, fuzz_settings, mutated, outcome, with_one_value_replaced
from hypothesis import given
from hypothesis import strategies as st

from alpsdx.criteria import evaluate_all
from alpsdx.errors import InputError
from alpsdx.model import case_from_dict, load_case, parse_case_text

EXAMPLES = sorted(p for p in (REPO / "examples").glob("*") if p.suffix in (".json", ".yaml", ".yml"))
SEEDS = [p.read_bytes() for p in EXAMPLES] or [b'{"id": "x", "age_years": 3}']
JSON_SEEDS = [json.loads(p.read_text(encoding="utf-8")) for p in EXAMPLES if p.suffix == ".json"]


def parse_and_evaluate(text: str, fmt: Any) -> None:
    case = parse_case_text(text, fmt=fmt, source="fuzz")
    for ev in evaluate_all(case).values():
        json.dumps(ev.to_dict())


@fuzz_settings(250)
@given(st.text(max_size=300), st.sampled_from(["json", "yaml", "auto"]))
def test_any_text(text: str, fmt: Any) -> None:
    assert outcome(parse_and_evaluate, text, fmt) in ("valid", "typed error")


@fuzz_settings(150)
@given(mutated(SEEDS), st.sampled_from(["json", "yaml", "auto"]))
def test_mutated_examples(data: bytes, fmt: Any) -> None:
    assert outcome(parse_and_evaluate, data.decode("utf-8", errors="replace"), fmt) in ("valid", "typed error")


JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                      st.dates().map(str))
JSON_VALUE = st.recursive(JSON_LEAF, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


@fuzz_settings(200)
@given(st.data())
def test_examples_with_one_value_replaced(data: st.DataObject) -> None:
    """Structure-aware: an example case with any one value (at any depth) replaced."""
    doc = with_one_value_replaced(data, JSON_SEEDS, JSON_VALUE)
    res = outcome(lambda: [json.dumps(e.to_dict()) for e in evaluate_all(case_from_dict(doc, "fuzz")).values()])
    assert res in ("valid", "typed error")


# --- regressions: each was found by fuzzing (docs/reliability.md) ------------------------------

@pytest.mark.parametrize(("text", "fmt", "message"), [
    ("[" * 100_000 + "]" * 100_000, "json", "nested too deeply"),
    ('{"id": ' + "[" * 5000 + "]" * 5000 + "}", "json", "nested too deeply"),
    ("id: " + "[" * 5000 + "]" * 5000, "yaml", "nested too deeply|maximum nesting depth"),
    ("- " * 3000 + "x", "yaml", "nested too deeply|maximum nesting depth"),  # block nesting
    ('{"id": "x", "age_years": ' + "9" * 5000 + "}", "json", "not valid JSON"),
    ("id: x\nage_years: " + "9" * 5000, "yaml", "not valid YAML"),
    ("id: x\nbirth_date: 2025-13-45\n", "yaml", "month must be in 1..12"),
    ("id: x\nbirth_date: 2025-02-30\n", "yaml", "day is out of range"),
    ('{"id": "x", "id": "y"}', "json", "key given twice"),
    ("id: x\nage_years: 3\nid: y\n", "yaml", "key given twice"),
])
def test_regression_parser_errors_are_typed(text: str, fmt: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_case_text(text, fmt=fmt)


@pytest.mark.parametrize("where", [
    {"findings": {"lymphadenopathy": {"present": True, "duration_months": float("inf")}}},
    {"apoptosis_assays": [{"result": "defective", "pct_of_control": float("inf")}]},
    {"medications": [{"name": "sirolimus", "dose_mg": float("inf")}]},
    {"clinical_events": [{"kind": "node_size", "site": "neck", "value": float("inf")}]},
    {"observations": [{"analyte": "igg", "value": float("nan"), "unit": "mg/dL"}]},
    {"age_years": float("nan")},
])
def test_regression_non_finite_numbers_refused(where: dict[str, Any]) -> None:
    text = json.dumps({"id": "x", "age_years": 3, **where})  # json.dumps writes Infinity / NaN
    with pytest.raises(InputError):
        parse_case_text(text)


def test_yaml_alias_bomb_is_refused_fast() -> None:
    """Billion laughs: nine levels of nine aliases (387 million strings if expanded)."""
    import time

    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    text = "id: x\n" + "\n".join(lines) + "\ngenes_tested: *a8\n"
    t0 = time.process_time()
    with pytest.raises(InputError):
        parse_case_text(text, fmt="yaml")
    assert time.process_time() - t0 < 2.0


def test_regression_yaml_error_is_one_line() -> None:
    with pytest.raises(InputError) as exc:
        parse_case_text("? [a, b]\n: x\n", fmt="yaml")
    assert "\n" not in str(exc.value)


def test_yaml_merge_keys_still_work() -> None:
    c = parse_case_text("id: x\nage_years: 3\nfindings:\n  splenomegaly: &s {present: true}\n"
                        "  lymphadenopathy:\n    <<: *s\n    duration_months: 7\n")
    assert c.findings.lymphadenopathy is not None and c.findings.lymphadenopathy.present is True


def test_regression_zero_lymphocytes_with_absolute_dnt_evaluates() -> None:
    # dnt_percent_from_counts refuses a zero lymphocyte count; the criteria must say so and
    # leave the DNT criterion unknown rather than fail the whole evaluation.
    c = parse_case_text(json.dumps({"id": "x", "age_years": 3, "observations": [
        {"analyte": "dnt_abs", "value": 5, "unit": "/uL"},
        {"analyte": "lymphocytes_abs", "value": 0, "unit": "10*9/L"}]}))
    evs = evaluate_all(c)
    assert evs["nih1999"].status_of("required.dnt").value == "unknown"
    assert any("not derived from the counts" in n for r in evs["nih1999"].criteria for n in r.notes)


def test_load_case_non_utf8_file_is_typed(tmp_path: Path) -> None:
    p = tmp_path / "c.json"
    p.write_bytes(b'{"id": "\xff"}')
    with pytest.raises(InputError, match="not UTF-8"):
        load_case(p)


# --- the event-built YAML loader against PyYAML's own (node graph) loader -------------------

_yaml_scalars = (st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=12)
                 | st.floats(allow_nan=False, allow_infinity=False, width=32)
                 | st.dates().map(lambda d: d.isoformat()))
_yaml_data = st.recursive(_yaml_scalars, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=4), max_leaves=25)


@fuzz_settings(200)
@given(_yaml_data, st.sampled_from([None, False, True]))
def test_event_yaml_loader_matches_pyyaml(data: Any, flow: bool | None) -> None:
    import yaml

    from alpsdx.model import _load_yaml, _StrictYAMLLoader

    text = yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True)
    assert _load_yaml(text) == yaml.load(text, Loader=_StrictYAMLLoader)


@pytest.mark.parametrize("text", [
    "a: &x {b: 1, c: [1, 2]}\nd: *x\n",                        # alias shares the anchored value
    "base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n",           # explicit key beats the merged one
    "m:\n  y: 3\n  <<: [{y: 1, z: 1}, {z: 2, w: 2}]\n",        # merge list: earlier mapping wins
    "t: 2024-02-29\nd: 2024-02-29T10:00:00Z\nn: ~\nf: 1.5e3\ni: 0x1F\nb: yes\ns: '01'\n",
    "--- \n- 1\n- [2, {a: b}]\n...\n",
    "",
])
def test_event_yaml_loader_examples(text: str) -> None:
    import yaml

    from alpsdx.model import _load_yaml, _StrictYAMLLoader

    assert _load_yaml(text) == yaml.load(text, Loader=_StrictYAMLLoader)


@pytest.mark.parametrize(("text", "message"), [
    ("a: 1\n---\nb: 2\n", "single document"),
    ("a: *nowhere\n", "undefined alias"),
    ("a: !!set {x, y}\n", "not used in case files"),
    ("m:\n  <<: 5\n", "merge key needs a mapping"),
])
def test_event_yaml_loader_refusals_are_typed(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_case_text(text, fmt="yaml")


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_case_parsing_memory_stays_under_20x_the_input(fmt: str) -> None:
    """The 20x rule (issue 9) on a long case: 12,000 observations (~0.8 MB), imports warmed first."""
    import tracemalloc

    import yaml

    def case(n: int) -> dict[str, Any]:
        return {"id": "big", "sex": "male", "age_years": 9, "observations": [
            {"analyte": "igg", "value": 1000 + i % 500, "unit": "mg/dL", "date": f"2020-0{1 + i % 9}-1{i % 9}"}
            for i in range(n)]}

    dump = (lambda d: json.dumps(d)) if fmt == "json" else (lambda d: yaml.safe_dump(d, sort_keys=False))
    parse_case_text(dump(case(3)), fmt=fmt)  # unit registry, knowledge: loaded once per process
    text = dump(case(12_000))
    tracemalloc.start()
    try:
        parsed = parse_case_text(text, fmt=fmt)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(parsed.observations) == 12_000
    assert peak < 20 * len(text), f"{peak / len(text):.1f}x"
