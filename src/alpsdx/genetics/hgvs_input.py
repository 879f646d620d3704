"""HGVS input as clinicians receive it in lab reports.

Syntax is checked with the ``hgvs`` package's parser (no network, no sequence data).
Accepted: ``NM_000043.6:c.779A>G``, ``NP_000034.1:p.(Ile310Ser)``, ``NM_000043.6(FAS):c...``,
a c. and a p. change together (``c.779A>G (p.Asp260Gly)``), or a bare ``c.``/``p.`` change
with ``gene``. One-letter amino acids are normalised to three-letter codes (HGVS 2016).

Without the reference sequence the protein effect of a c. change is inferred only as far
as its syntax allows: its residue is ceil(c. position / 3); an intronic change takes the
residue of its nearest exon boundary and a splice consequence; every such inference is
stated in ``Interpretation.notes``.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from alpsdx.errors import VariantError
from alpsdx.genetics.domains import CPos, accession_gene, gene_map, has_domain_map
from alpsdx.model import Variant

__all__ = ["Interpretation", "interpret", "parse_hgvs"]

EXPECTED = (
    "an HGVS change such as 'NM_000043.6:c.779A>G', 'NP_000034.1:p.(Ile310Ser)', "
    "'c.506-1G>A' or 'p.Asp260Gly' (bare changes need a gene)"
)
_PLACEHOLDER = {"c": "NM_000000.0", "p": "NP_000000.0", "n": "NR_000000.0"}
_ACC_GENE = re.compile(r"^(?P<acc>[A-Za-z]{2,4}_?[0-9]+(?:\.[0-9]+)?)\((?P<gene>[A-Za-z0-9-]+)\)(?P<rest>:.*)$")
_MAX_LEN = 500

# Sequence Ontology terms (as VEP writes them) for consequences inferred from syntax.
TRUNCATING = frozenset({"stop_gained", "frameshift_variant", "start_lost", "protein_absent"})
SPLICE = frozenset({"splice_acceptor_variant", "splice_donor_variant", "splice_region_variant"})


@dataclass
class Interpretation:
    """What the syntax of one HGVS change tells: kind, residue, consequence and notes."""

    kind: str  # "c", "p" or "n"
    accession: str | None
    text: str  # normalised HGVS (three-letter amino acids)
    gene: str | None = None
    consequence: str | None = None
    protein_start: int | None = None
    protein_end: int | None = None
    position_from_c: bool = False
    intronic_offset: int | None = None
    # c. positions as written (base, intronic offset, 3'UTR flag): the exon/intron of a
    # c. change is looked up from these (alpsdx.genetics.domains.ExonTable).
    c_start: CPos | None = None
    c_end: CPos | None = None
    notes: list[str] = field(default_factory=list)
    accession_notes: list[str] = field(default_factory=list)  # also in ``notes``


@lru_cache(maxsize=1)
def _parser() -> Any:
    import hgvs.parser

    return hgvs.parser.Parser()


def _parse_one(text: str, gene: str | None) -> Interpretation:
    """Parse one c./p./n. change (with or without accession); a fresh copy each call."""
    return copy.deepcopy(_parse_one_cached(text, gene))


@lru_cache(maxsize=8192)
def _parse_one_cached(text: str, gene: str | None) -> Interpretation:
    """The grammar is slow (~1.5 ms a string): results are cached; errors are not."""
    raw = text.strip()
    acc_gene: str | None = None
    m = _ACC_GENE.match(raw)
    if m:  # ClinVar style NM_000043.6(FAS):c.779A>G
        acc_gene = m.group("gene").upper()
        raw = m.group("acc") + m.group("rest")
    accession: str | None = None
    if ":" in raw:
        accession, _, change = raw.partition(":")
        accession = accession.strip()
    else:
        change = raw
    change = change.strip()
    kind = change[:1]
    if len(change) < 3 or change[1:2] != "." or kind not in "cpngm":
        raise VariantError("not an HGVS c./p. change", field="hgvs", value=text, expected=EXPECTED)
    if kind in "gm":
        raise VariantError(
            "genomic (g./m.) HGVS cannot be placed on a protein without a transcript mapping",
            field="hgvs",
            value=text,
            expected="the c. or p. change on the transcript (e.g. 'NM_000043.6:c.779A>G')",
        )
    if accession is not None and not accession:
        raise VariantError("empty accession before ':'", field="hgvs", value=text, expected=EXPECTED)
    full = f"{accession or _PLACEHOLDER[kind]}:{change}"
    try:
        parsed = _parser().parse_hgvs_variant(full)
    except Exception as exc:  # HGVSParseError and parsley internals alike
        detail = str(exc).split(":")[-1].strip() if str(exc) else "syntax error"
        raise VariantError(
            f"not valid HGVS ({detail})", field="hgvs", value=text, expected=EXPECTED
        ) from None
    if parsed.type != kind:
        raise VariantError("HGVS type mismatch", field="hgvs", value=text, expected=EXPECTED)
    try:
        normalised = str(parsed)
    except Exception:
        normalised = full
    if accession is None:
        normalised = normalised.split(":", 1)[1]
    if normalised.endswith("fsTer") and change.endswith("fs"):
        normalised = normalised[: -len("Ter")]  # keep the short form 'p.Arg234fs' as written
    interp = Interpretation(kind=kind, accession=accession, text=normalised)
    if acc_gene:
        interp.gene = acc_gene
    if accession:
        found = accession_gene(accession)
        if found:
            g, note = found
            if interp.gene and interp.gene != g:
                raise VariantError(
                    f"accession {accession} belongs to {g}, not {interp.gene}",
                    field="hgvs",
                    value=text,
                    expected=f"the gene of the accession ({g})",
                )
            interp.gene = g
            if note:
                interp.notes.append(note)
                interp.accession_notes.append(note)
        elif gene or interp.gene:
            note = (
                f"accession {accession} is not a known MANE transcript of the ALPS genes; "
                f"protein positions are read as given"
            )
            interp.notes.append(note)
            interp.accession_notes.append(note)
    if gene:
        g = gene.upper()
        if interp.gene and interp.gene != g:
            raise VariantError(
                f"accession {accession} belongs to {interp.gene}, not {g}",
                field="gene",
                value=gene,
                expected=f"{interp.gene} or no --gene",
            )
        interp.gene = g
    try:
        if kind == "p":
            _interpret_p(parsed, interp)
        elif kind == "c":
            _interpret_c(parsed, interp)
        else:
            interp.consequence = "non_coding_transcript_variant"
    except VariantError:
        raise
    except Exception:  # an object shape the parser allows but we do not expect
        interp.notes.append("the protein effect could not be derived from this HGVS form")
    return interp


def _interpret_p(parsed: Any, out: Interpretation) -> None:
    pe = parsed.posedit
    if pe is None:  # p.?
        out.consequence = "protein_effect_unknown"
        return
    edit = pe.edit
    if isinstance(edit, str) or pe.pos is None:
        if str(edit) == "0":
            out.consequence = "protein_absent"
            out.notes.append("p.0: no protein is made (treated as truncating)")
        elif str(edit) == "=":
            out.consequence = "synonymous_variant"
        else:
            out.consequence = "protein_effect_unknown"
        return
    start = int(pe.pos.start.pos)
    end = int(pe.pos.end.pos) if pe.pos.end is not None else start
    out.protein_start, out.protein_end = start, end
    ref_aa = str(pe.pos.start.aa or "")
    etype = getattr(edit, "type", None)
    if etype == "sub":
        alt = getattr(edit, "alt", None)
        if start == 1 and ref_aa in ("Met", "M"):
            out.consequence = "start_lost"
        elif alt in ("Ter", "*"):
            out.consequence = "stop_gained"
        elif alt in (None, "", "?"):
            out.consequence = "protein_effect_unknown"
        elif alt == ref_aa:
            out.consequence = "synonymous_variant"
        else:
            out.consequence = "missense_variant"
    elif etype == "identity":
        out.consequence = "synonymous_variant"
    elif etype == "fs":
        out.consequence = "frameshift_variant"
    elif etype == "del":
        out.consequence = "start_lost" if start == 1 else "inframe_deletion"
    elif etype in ("ins", "dup"):
        out.consequence = "inframe_insertion"
    elif etype == "delins":
        alt = str(getattr(edit, "alt", "") or "")
        out.consequence = "stop_gained" if alt.endswith(("Ter", "*")) else "protein_altering_variant"
    elif etype == "ext":
        out.consequence = "stop_lost" if ref_aa in ("Ter", "*") else "start_lost"
    else:
        out.consequence = "protein_altering_variant"


def _c_length(edit: Any, span: int) -> int | None:
    """Net change in coding length of a c. edit (None when it cannot be told)."""
    etype = getattr(edit, "type", None)
    if etype == "del":
        return -span
    if etype == "dup":
        return span
    if etype == "ins":
        alt = getattr(edit, "alt", None)
        return len(alt) if alt else None
    if etype == "delins":
        alt = getattr(edit, "alt", None)
        return (len(alt) - span) if alt is not None else None
    return 0


def _cpos(pos: Any, datum: Any) -> CPos:
    """A parsed c. position as ``CPos`` (c.*N has ``utr3``; c.-N a negative base)."""
    return CPos(
        base=int(pos.base), offset=int(pos.offset or 0), utr3=pos.datum == datum.CDS_END
    )


def _interpret_c(parsed: Any, out: Interpretation) -> None:
    from hgvs.enums import Datum

    pe = parsed.posedit
    if pe is None or pe.pos is None:
        out.consequence = "coding_sequence_variant"
        return
    s, e = pe.pos.start, pe.pos.end if pe.pos.end is not None else pe.pos.start
    try:
        out.c_start, out.c_end = _cpos(s, Datum), _cpos(e, Datum)
    except (TypeError, ValueError):  # uncertain positions such as c.(?_-1)
        out.c_start = out.c_end = None
    if s.datum == Datum.CDS_END and e.datum == Datum.CDS_END:
        out.consequence = "3_prime_UTR_variant"
        return
    if s.base < 1 and e.base < 1 and s.datum == Datum.CDS_START:
        out.consequence = "5_prime_UTR_variant"
        return
    offset = s.offset if s.offset else e.offset
    if offset:  # intronic: take the nearest exon boundary base
        base = s.base if s.offset else e.base
        a = abs(int(offset))
        # Splice site = the 2 intronic bases next to the exon; splice region = 3-8
        # (Sequence Ontology / VEP definitions).
        if a <= 2:
            out.consequence = "splice_acceptor_variant" if offset < 0 else "splice_donor_variant"
        elif a <= 8:
            out.consequence = "splice_region_variant"
        else:
            out.consequence = "intron_variant"
        out.intronic_offset = int(offset)
        if base >= 1:
            out.protein_start = out.protein_end = math.ceil(base / 3)
            out.position_from_c = True
            out.notes.append(
                f"intronic change: residue {out.protein_start} is that of the nearest coding base "
                f"c.{base} (exon boundary); consequence {out.consequence} inferred from the offset "
                f"{int(offset):+d}"
            )
        return
    sb = max(int(s.base), 1)
    eb = max(int(e.base), sb) if e.datum != Datum.CDS_END else sb
    out.protein_start = math.ceil(sb / 3)
    out.protein_end = math.ceil(eb / 3)
    out.position_from_c = True
    etype = getattr(pe.edit, "type", None)
    span = eb - sb + 1
    if sb <= 3 and etype not in ("identity",):
        out.consequence = "start_lost"
        out.notes.append("change within the start codon (c.1-c.3): start loss assumed")
    elif etype == "identity":
        out.consequence = "synonymous_variant"
    elif etype == "sub":
        out.consequence = "coding_sequence_variant"
        out.notes.append(
            "single-nucleotide coding change without a p. change: missense, synonymous or "
            "nonsense cannot be told without the reference sequence"
        )
    else:
        delta = _c_length(pe.edit, span)
        if delta is None:
            out.consequence = "protein_altering_variant"
        elif delta % 3:
            out.consequence = "frameshift_variant"
        elif delta < 0:
            out.consequence = "inframe_deletion"
        elif delta > 0:
            out.consequence = "inframe_insertion"
        else:
            out.consequence = "protein_altering_variant"
    out.notes.append(
        f"residue {out.protein_start} derived from the c. position (ceil(c./3)); "
        "no p. change was given"
    )


def _split(text: str) -> list[str]:
    """Split 'c.779A>G (p.Asp260Gly)' / 'c.779A>G; p.(Asp260Gly)' into changes."""
    tokens = [t for t in re.split(r"[\s;,]+", text.strip()) if t]
    out: list[str] = []
    for t in tokens:
        wrapped = t.startswith("(") and t.endswith(")")
        if wrapped and (t[1:3] in ("p.", "c.") or ":" in t):
            t = t[1:-1]
        out.append(t)
    return out


def interpret(hgvs_c: str | None, hgvs_p: str | None, gene: str | None = None) -> tuple[
    Interpretation | None, Interpretation | None
]:
    """Interpret stored HGVS strings (as kept on a ``Variant``); raises VariantError if bad."""
    ci = _parse_one(hgvs_c, gene) if hgvs_c else None
    pi = _parse_one(hgvs_p, gene or (ci.gene if ci else None)) if hgvs_p else None
    return ci, pi


def parse_hgvs(text: str, gene: str | None = None) -> Variant:
    """A ``Variant`` from one HGVS string (c., p. or both); ``VariantError`` on bad syntax."""
    if not isinstance(text, str) or not text.strip():
        raise VariantError("empty HGVS string", field="hgvs", value=text, expected=EXPECTED)
    if len(text) > _MAX_LEN:
        raise VariantError(
            f"HGVS string longer than {_MAX_LEN} characters", field="hgvs", value=text[:40] + "...",
            expected=EXPECTED,
        )
    parts = _split(text)
    if not 1 <= len(parts) <= 2:
        raise VariantError(
            "expected one c. change, one p. change, or one of each",
            field="hgvs", value=text, expected=EXPECTED,
        )
    interps = [_parse_one(p, gene) for p in parts]
    c = [i for i in interps if i.kind in "cn"]
    p = [i for i in interps if i.kind == "p"]
    if len(c) > 1 or len(p) > 1:
        raise VariantError(
            "two changes of the same kind in one string", field="hgvs", value=text, expected=EXPECTED
        )
    ci, pi = (c[0] if c else None), (p[0] if p else None)
    genes = {i.gene for i in interps if i.gene}
    if len(genes) > 1:
        raise VariantError(
            f"the c. and p. changes name different genes ({', '.join(sorted(genes))})",
            field="hgvs", value=text, expected="both changes on one gene",
        )
    g = next(iter(genes), None)
    if g is None:
        raise VariantError(
            "a change without a known accession needs a gene",
            field="gene", value=None,
            expected="--gene FAS|FASLG|CASP10|... or a MANE accession such as NM_000043.6",
        )
    if pi and pi.protein_start is not None and has_domain_map(g):
        length = int(gene_map(g)["protein_length"])
        if pi.protein_start > length + 1:
            raise VariantError(
                f"residue {pi.protein_start} is beyond the end of {g} ({length} residues)",
                field="hgvs", value=text, expected=f"a residue within 1..{length}",
            )
    consequence = (pi.consequence if pi and pi.consequence != "protein_effect_unknown" else None) or (
        ci.consequence if ci else None
    )
    try:
        return Variant(
            gene=g,
            hgvs_c=ci.text if ci else None,
            hgvs_p=pi.text if pi else None,
            consequence=consequence,
            source="hgvs",
        )
    except Exception as exc:  # pydantic validation of the gene symbol
        raise VariantError(str(exc).splitlines()[0], field="gene", value=g) from None
