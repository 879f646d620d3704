"""The validated domain model: one patient ("case") as ``../shared/case-format.md`` defines it.

Strict by design: unknown keys are errors (a typo must not silently drop a finding), and
impossible values (negative counts, percentages over 100, dates in the future, evaluation
before birth) are refused with the field and the value named. Absent means unknown.
Observations keep their original value and unit; canonical values are derived on demand.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from alpsdx import units
from alpsdx.errors import InputError, UnitError

__all__ = [
    "ApoptosisAssay",
    "Case",
    "ClinicalEvent",
    "Cytopenia",
    "Finding",
    "Findings",
    "Medication",
    "Observation",
    "Sex",
    "Variant",
    "case_from_dict",
    "load_case",
    "parse_case_text",
]

DAYS_PER_YEAR = 365.25


_TODAY: tuple[float, float, dt.date] = (0.0, 0.0, dt.date.min)  # (valid from, valid until, date)


def today() -> dt.date:
    """The current local date (one place, so tests and the CLI agree on 'the future').

    Kept until the next local midnight: ``date.today()`` costs microseconds (a time-zone
    look-up) and validation asks for it once per date in a case."""
    global _TODAY
    now = time.time()
    start, until, day = _TODAY
    if not start <= now < until:
        day = dt.date.fromtimestamp(now)
        start = dt.datetime.combine(day, dt.time()).timestamp()
        until = dt.datetime.combine(day + dt.timedelta(days=1), dt.time()).timestamp()
        _TODAY = (start, until, day)
    return day


class _Carried(ValueError):
    """Carries a typed alpsdx error through pydantic so its location can be added."""

    def __init__(self, err: InputError) -> None:
        super().__init__(str(err))
        self.err = err


class _Strict(BaseModel):
    # allow_inf_nan=False: a NaN or infinite number anywhere (durations, doses, VAF, sizes)
    # is refused, never compared (NaN > x is silently False).
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, allow_inf_nan=False)


def _not_future(value: dt.date | None, info_name: str) -> dt.date | None:
    if value is not None and value > today():
        raise ValueError(f"date {value.isoformat()} is in the future (today is {today().isoformat()})")
    return value


class Sex(StrEnum):
    female = "female"
    male = "male"
    other = "other"
    unknown = "unknown"


class Cytopenia(StrEnum):
    """Autoimmune cytopenia lineages named by the NIH 2009 secondary criterion."""

    hemolytic_anemia = "hemolytic_anemia"
    thrombocytopenia = "thrombocytopenia"
    neutropenia = "neutropenia"


class Finding(_Strict):
    """A clinical finding (lymphadenopathy, splenomegaly, ...) with its time course."""

    present: bool | None = None
    onset: dt.date | None = None
    duration_months: float | None = Field(default=None, ge=0)
    malignancy_excluded: bool | None = None
    infection_excluded: bool | None = None
    date: dt.date | None = None  # when the finding was last documented

    @field_validator("onset", "date")
    @classmethod
    def _past(cls, v: dt.date | None) -> dt.date | None:
        return _not_future(v, "onset")


class Findings(_Strict):
    lymphadenopathy: Finding | None = None
    splenomegaly: Finding | None = None
    hepatomegaly: Finding | None = None
    autoimmune_cytopenias: list[Cytopenia] | None = None
    typical_histology: bool | None = None
    family_history_lymphoproliferation: bool | None = None
    splenectomy: bool | None = None
    lymphoma: bool | None = None

    @field_validator("autoimmune_cytopenias")
    @classmethod
    def _unique(cls, v: list[Cytopenia] | None) -> list[Cytopenia] | None:
        if v is None:
            return v
        seen: list[Cytopenia] = []
        for c in v:
            if c in seen:
                raise ValueError(f"lineage {c.value!r} is listed twice")
            seen.append(c)
        return seen


class ReferenceInterval(_Strict):
    """The performing laboratory's reference interval, as printed on its report, in the
    observation's own unit. When given it takes precedence over alpsdx's cited tables."""

    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ReferenceInterval:
        if self.low is None and self.high is None:
            raise ValueError("give low, high or both")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low ({self.low:g}) is above high ({self.high:g})")
        return self


class Observation(_Strict):
    """One measured value in its original unit. ``analyte`` is an alpsdx key or a LOINC code."""

    analyte: str
    value: float
    unit: str
    date: dt.date | None = None
    source: str | None = None
    # False when a DNT value was gated without TCRab (CD3+CD4-CD8- only): gamma-delta DNT
    # are then included, which the NIH 2009 criterion does not allow.
    tcrab_gated: bool | None = None
    reference_range: ReferenceInterval | None = None

    @field_validator("date")
    @classmethod
    def _past(cls, v: dt.date | None) -> dt.date | None:
        return _not_future(v, "date")

    @model_validator(mode="after")
    def _check(self) -> Observation:
        try:
            key = units.resolve_analyte(self.analyte)
            if key != self.analyte:
                object.__setattr__(self, "analyte", key)
            units.check_value(key, self.value, self.unit)
        except UnitError as err:
            raise _Carried(err) from None
        return self

    @property
    def canonical_value(self) -> float:
        """The value in the analyte's canonical unit (see knowledge/data/analytes.yaml)."""
        return units.to_canonical(self.analyte, self.value, self.unit)

    @property
    def canonical_unit(self) -> str:
        return units.canonical_unit(self.analyte)

    @property
    def canonical_reference(self) -> tuple[float | None, float | None] | None:
        """The lab's reference interval in the canonical unit, or None when not reported."""
        r = self.reference_range
        if r is None:
            return None
        low = None if r.low is None else units.to_canonical(self.analyte, r.low, self.unit)
        high = None if r.high is None else units.to_canonical(self.analyte, r.high, self.unit)
        return low, high


class ApoptosisAssay(_Strict):
    """One in-vitro FAS-mediated apoptosis assay."""

    result: Literal["defective", "normal", "indeterminate"]
    date: dt.date | None = None
    pct_of_control: float | None = Field(default=None, ge=0)
    lab: str | None = None

    @field_validator("date")
    @classmethod
    def _past(cls, v: dt.date | None) -> dt.date | None:
        return _not_future(v, "date")


class Variant(_Strict):
    """A reported genetic variant (see ``alpsdx.genetics`` for annotation)."""

    gene: str
    hgvs_c: str | None = None
    hgvs_p: str | None = None
    origin: Literal["germline", "somatic", "unknown"] = "unknown"
    zygosity: Literal["heterozygous", "homozygous", "hemizygous", "compound_heterozygous", "unknown"] = "unknown"
    classification: Literal["pathogenic", "likely_pathogenic", "vus", "likely_benign", "benign"] | None = None
    vaf: float | None = Field(default=None, ge=0, le=1)
    sample: str | None = None  # e.g. "whole_blood", "sorted_dnt"
    consequence: str | None = None
    date: dt.date | None = None
    source: str | None = None

    @field_validator("gene")
    @classmethod
    def _upper(cls, v: str) -> str:
        if not v:
            raise ValueError("gene symbol is empty")
        return v.upper()

    @property
    def is_pathogenic(self) -> bool:
        """Pathogenic or likely pathogenic by the reported ACMG class; a VUS never is."""
        return self.classification in ("pathogenic", "likely_pathogenic")


class Medication(_Strict):
    name: str
    dose_mg: float | None = Field(default=None, ge=0)
    frequency: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    route: str | None = None

    @field_validator("name")
    @classmethod
    def _lower(cls, v: str) -> str:
        if not v:
            raise ValueError("medication name is empty")
        return v.lower()

    @model_validator(mode="after")
    def _order(self) -> Medication:
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


EVENT_KINDS = (
    "b_symptoms",            # fever, drenching night sweats or weight loss (constitutional symptoms)
    "node_size",             # a measured lymph node: value = size (cm or mm), site = where
    "spleen_size",           # spleen length below costal margin or craniocaudal (cm)
    "pet_suv",               # FDG-PET SUVmax of a lesion: value = SUVmax, site = which node
    "splenectomy_proposed",  # splenectomy is being considered
    "splenectomy",           # splenectomy performed (date)
    "vaccination",           # e.g. site="pneumococcal", "meningococcal", "hib"
    "antibiotic_prophylaxis",  # e.g. site="penicillin V"
    "biopsy",                # a biopsy performed: site = which node
    "other",
)


class ClinicalEvent(_Strict):
    """A dated clinical event the care module reads (B symptoms, node sizes, PET, splenectomy)."""

    kind: Literal[
        "b_symptoms", "node_size", "spleen_size", "pet_suv", "splenectomy_proposed",
        "splenectomy", "vaccination", "antibiotic_prophylaxis", "biopsy", "other",
    ]
    date: dt.date | None = None
    site: str | None = None
    value: float | None = Field(default=None, ge=0)
    unit: str | None = None
    note: str | None = None

    @field_validator("date")
    @classmethod
    def _past(cls, v: dt.date | None) -> dt.date | None:
        return _not_future(v, "date")


class Case(_Strict):
    """One patient as of an evaluation date."""

    id: str = Field(min_length=1)
    sex: Sex = Sex.unknown
    birth_date: dt.date | None = None
    age_years: float | None = Field(default=None, ge=0, le=130)
    evaluation_date: dt.date | None = None
    findings: Findings = Field(default_factory=Findings)
    observations: list[Observation] = Field(default_factory=list)
    apoptosis_assays: list[ApoptosisAssay] = Field(default_factory=list)
    variants: list[Variant] = Field(default_factory=list)
    medications: list[Medication] = Field(default_factory=list)
    clinical_events: list[ClinicalEvent] = Field(default_factory=list)
    # Genes sequenced so far (e.g. ["FAS"]); with no pathogenic variant in them the mutation
    # criterion is "not met" (ALPS-U) rather than "unknown". Extension of case-format.md.
    genes_tested: list[str] | None = None
    height_cm: float | None = Field(default=None, gt=0, le=250)
    weight_kg: float | None = Field(default=None, gt=0, le=400)

    @field_validator("birth_date", "evaluation_date")
    @classmethod
    def _past(cls, v: dt.date | None) -> dt.date | None:
        return _not_future(v, "date")

    @model_validator(mode="after")
    def _dates(self) -> Case:
        if self.birth_date and self.evaluation_date and self.evaluation_date < self.birth_date:
            raise ValueError(
                f"evaluation_date {self.evaluation_date} is before birth_date {self.birth_date}"
            )
        if self.birth_date:
            for i, o in enumerate(self.observations):
                if o.date and o.date < self.birth_date:
                    raise ValueError(f"observations[{i}].date {o.date} is before birth_date {self.birth_date}")
        return self

    def at(self, evaluation_date: dt.date | None) -> Case:
        """The same case evaluated on another date (``None`` keeps the case's own date)."""
        if evaluation_date is None:
            return self
        return self.model_copy(update={"evaluation_date": evaluation_date})

    @property
    def as_of(self) -> dt.date:
        """The evaluation date: the case's own, else today."""
        return self.evaluation_date or today()

    @property
    def age(self) -> float | None:
        """Age in years at the evaluation date, from birth_date, else ``age_years``."""
        if self.birth_date is not None:
            return (self.as_of - self.birth_date).days / DAYS_PER_YEAR
        return self.age_years

    def to_json_dict(self) -> dict[str, Any]:
        """The case as case-format JSON (unset fields left out, so it round-trips)."""
        data: dict[str, Any] = self.model_dump(mode="json", exclude_none=True, exclude_defaults=False)
        return data


# --- parsing: the one boundary where pydantic errors become InputError -----------------


def _loc(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _input_error(exc: ValidationError, source: str | None) -> InputError:
    err = exc.errors(include_url=False)[0]
    field = _loc(err.get("loc", ()))
    msg = err.get("msg", "invalid value")
    ctx = err.get("ctx") or {}
    inner = ctx.get("error")
    if isinstance(inner, _Carried):
        e = inner.err
        sub = (e.field or "").split(".")[-1]
        where = f"{field}.{sub}" if field and sub else (field or e.field or "")
        if source:
            where = f"{source}: {where}"
        return type(e)(e.message, field=where or None, value=e.value, expected=e.expected)
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    value = err.get("input")
    if err.get("type") == "extra_forbidden":
        msg = "unknown key (a typo would silently drop data, so it is refused)"
        value = field.rsplit(".", 1)[-1]
    elif isinstance(value, dict | list):
        value = None
    if source:
        field = f"{source}: {field}" if field else source
    return InputError(msg, field=field or None, value=value)


def case_from_dict(data: Any, source: str | None = None) -> Case:
    """Validate a parsed case; raises ``InputError`` naming the field and the value."""
    if not isinstance(data, dict):
        raise InputError("a case must be a JSON/YAML object", field=source, value=type(data).__name__)
    try:
        return Case.model_validate(data)
    except ValidationError as exc:
        raise _input_error(exc, source) from None


def _no_duplicate_keys(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """JSON object hook: a repeated key would silently drop the first value, so refuse it."""
    out: dict[Any, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


class _DuplicateKey(ValueError):
    def __init__(self, key: Any) -> None:
        super().__init__(key)
        self.key = key


# libyaml's parser when present: linear time and a nesting limit, where the pure-Python
# parser takes seconds on a few kB of nested brackets before hitting the recursion limit.
_SafeBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictYAMLLoader(_SafeBase):  # type: ignore[misc]
    """SafeLoader that refuses repeated mapping keys (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                if key in seen:
                    raise _DuplicateKey(key)
                seen.add(key)
            except TypeError:  # unhashable key: construct_mapping reports it below
                break
        result: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return result


_MAX_YAML_DEPTH = 1000
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _load_yaml(text: str) -> Any:
    """One YAML document as Python data, built straight from the parser's events.

    ``yaml.load`` composes the whole node graph before constructing anything: ~70 bytes of
    memory per byte of input for a long observation list. Here each scalar is resolved and
    constructed by the same safe resolver/constructor as it arrives, so peak memory is the
    data itself. Same semantics as ``_StrictYAMLLoader``: safe tags, merge keys, aliases
    (shared, not copied), repeated keys refused.
    """
    loader = _StrictYAMLLoader(text)
    anchors: dict[str, Any] = {}
    strings: dict[str, str] = {}
    # each open container: [object, pending key or _NO_KEY, pending key is "<<", seen keys,
    # a child container to merge in when it closes]
    stack: list[list[Any]] = []
    root: Any = _NO_KEY
    documents = 0

    def merge_into(target: dict[Any, Any], value: Any) -> None:
        # "<<: *anchor" or "<<: [*a, *b]": keys not given explicitly are merged in, earlier first
        for part in value if isinstance(value, list) else [value]:
            if not isinstance(part, dict):
                raise yaml.constructor.ConstructorError(None, None, "a merge key needs a mapping")
            for k, v in part.items():
                target.setdefault(k, v)

    def add(value: Any, is_key_merge: bool = False, complete: bool = True) -> None:
        nonlocal root
        if not stack:
            root = value
            return
        top = stack[-1]
        if isinstance(top[0], list):
            top[0].append(value)
        elif top[1] is _NO_KEY:
            if isinstance(value, dict | list):
                raise yaml.constructor.ConstructorError(None, None, "found unhashable key")
            if not is_key_merge:
                if value in top[3]:
                    raise _DuplicateKey(value)
                top[3].add(value)
            top[1], top[2] = value, is_key_merge
        elif top[2]:
            if complete:
                merge_into(top[0], value)
            else:
                top[4] = value  # merged when this container closes
            top[1], top[2] = _NO_KEY, False
        else:
            top[0][top[1]] = value
            top[1] = _NO_KEY

    try:
        while loader.check_event():
            event: Any = loader.get_event()
            if isinstance(event, yaml.ScalarEvent):
                tag = event.tag
                if tag is None or tag == "!":
                    tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
                if tag == _MERGE_TAG:
                    add(None, is_key_merge=True)
                    continue
                node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)  # type: ignore[arg-type]  # libyaml's Mark is not in the stubs
                construct = loader.yaml_constructors.get(tag, loader.yaml_constructors[None])
                value = construct(loader, node)
                if type(value) is str and len(value) <= 64:  # keys and units repeat: one object each, as json does
                    value = strings.setdefault(value, value)
                if event.anchor is not None:
                    anchors[event.anchor] = value
                add(value)
            elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                mapping = isinstance(event, yaml.MappingStartEvent)
                if event.tag not in (None, "!", _MAP_TAG if mapping else _SEQ_TAG):
                    raise yaml.constructor.ConstructorError(None, None, f"tag {event.tag} is not used in case files",
                                                            event.start_mark)  # type: ignore[arg-type]  # libyaml's Mark is not in the stubs
                if len(stack) >= _MAX_YAML_DEPTH:
                    raise RecursionError
                obj: Any = {} if mapping else []
                if event.anchor is not None:
                    anchors[event.anchor] = obj
                add(obj, complete=False)
                stack.append([obj, _NO_KEY, False, set(), None])
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                done = stack.pop()[0]
                if stack and stack[-1][4] is done:
                    stack[-1][4] = None
                    merge_into(stack[-1][0], done)
            elif isinstance(event, yaml.AliasEvent):
                if event.anchor not in anchors:
                    raise yaml.composer.ComposerError(None, None, f"found undefined alias {event.anchor}",
                                                      event.start_mark)  # type: ignore[arg-type]  # libyaml's Mark is not in the stubs
                add(anchors[event.anchor])
            elif isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise yaml.composer.ComposerError("expected a single document in the stream", None,
                                                      "but found another document", event.start_mark)  # type: ignore[arg-type]  # libyaml's Mark is not in the stubs
    finally:
        loader.dispose()
    return None if root is _NO_KEY else root


_NO_KEY: Any = object()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def parse_case_text(text: str, *, fmt: Literal["json", "yaml", "auto"] = "auto", source: str | None = None) -> Case:
    """Parse case JSON or YAML text (``auto``: JSON when it starts with '{').

    Every failure is an ``InputError``: malformed text, repeated keys, nesting too deep to
    parse, integers too long to convert, impossible YAML dates.
    """
    stripped = text.lstrip()
    if fmt == "auto":
        fmt = "json" if stripped.startswith("{") else "yaml"
    try:
        if fmt == "json":
            data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
        else:
            data = _load_yaml(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", field=source) from None
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML: {_one_line(str(exc))}", field=source) from None
    except _DuplicateKey as exc:
        raise InputError("key given twice (one value would be silently dropped)", field=source,
                         value=_one_line(str(exc.key))[:80]) from None
    except RecursionError:
        raise InputError(f"{fmt.upper()} nested too deeply", field=source, expected="a case object") from None
    except ValueError as exc:  # int() digit limit, impossible YAML dates (month 13, 30 February)
        raise InputError(f"not valid {fmt.upper()}: {_one_line(str(exc))[:200]}", field=source) from None
    return case_from_dict(data, source)


def load_case(path: str | Path) -> Case:
    """Read a case file (``.json``, ``.yaml``/``.yml``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", field=str(p)) from None
    except UnicodeDecodeError:
        raise InputError("file is not UTF-8 text", field=str(p)) from None
    fmt: Literal["json", "yaml", "auto"] = (
        "json" if p.suffix.lower() == ".json" else "yaml" if p.suffix.lower() in (".yaml", ".yml") else "auto"
    )
    return parse_case_text(text, fmt=fmt, source=str(p))
