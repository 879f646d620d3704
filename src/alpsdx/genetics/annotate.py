"""One variant -> domain, region, expected mechanism, origin, classification and risk.

Pure: no I/O. Mechanism (FAS): intracellular, especially death-domain, missense and
in-frame changes and truncations that remove the death domain act dominant-negatively
(Teachey 2012, PMID 22157362; Price 2014). Outside the death domain (Genet Med 2012, PMID
22237435): frameshift/nonsense changes before exon 7 and signal-peptide changes leave less
functional FAS (haploinsufficiency); extracellular missense and in-frame changes interfere
dominantly in vitro; both have lower penetrance than death-domain mutations. A VUS never
satisfies the mutation criterion (Oliveira 2010); it is shown as a VUS with its domain.
The exon or intron comes from the VCF annotation or from the cited exon table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from alpsdx.errors import VariantError
from alpsdx.genetics import domains as dom
from alpsdx.genetics.hgvs_input import SPLICE, TRUNCATING, Interpretation, interpret
from alpsdx.genetics.origin import OriginCall, group_same_change, infer_origin
from alpsdx.genetics.risk import related_gene, risk_for
from alpsdx.model import Variant

__all__ = ["AnnotatedVariant", "annotate", "annotate_all", "consequence_class", "mechanism_for"]

NON_TRUNCATING = frozenset(
    {
        "missense_variant",
        "inframe_deletion",
        "inframe_insertion",
        "protein_altering_variant",
        "coding_sequence_variant",
        "stop_lost",
    }
)
NO_PROTEIN_CHANGE = frozenset(
    {
        "synonymous_variant",
        "5_prime_UTR_variant",
        "3_prime_UTR_variant",
        "intron_variant",
        "non_coding_transcript_variant",
        "upstream_gene_variant",
        "downstream_gene_variant",
    }
)


@dataclass
class AnnotatedVariant:
    """The annotation a clinician sees for one variant (``to_dict`` for JSON)."""

    gene: str
    hgvs_c: str | None
    hgvs_p: str | None
    consequence: str | None
    protein_position: int | None
    domain: str | None
    domain_label: str | None
    region: str | None
    mechanism: str | None
    mechanism_basis: str | None
    origin: str
    origin_basis: str
    classification: str
    meets_mutation_criterion: bool
    subtype_hint: str | None
    related_disorder: str | None
    is_alps_gene: bool
    zygosity: str
    vaf: float | None
    sample: str | None
    exon: str | None
    considerations: list[str] = field(default_factory=list)
    risk: dict[str, Any] = field(default_factory=dict)
    citations: list[str] = field(default_factory=list)
    intron: str | None = None
    exon_basis: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def consequence_class(consequence: str | None) -> str:
    """'truncating', 'non_truncating', 'splice', 'none' or 'unknown' (VEP '&' lists too)."""
    if not consequence:
        return "unknown"
    terms = [t.strip() for t in consequence.replace(",", "&").split("&") if t.strip()]
    if any(t in TRUNCATING for t in terms):
        return "truncating"
    if any(t in ("splice_acceptor_variant", "splice_donor_variant") for t in terms):
        return "splice"
    if any(t in NON_TRUNCATING for t in terms):
        return "non_truncating"
    if any(t in SPLICE for t in terms):
        return "splice"
    if all(t in NO_PROTEIN_CHANGE for t in terms):
        return "none"
    return "unknown"


def mechanism_for(
    gene: str, consequence: str | None, region: str | None, domain: str | None, position: int | None
) -> tuple[str | None, str, list[str]]:
    """Expected mechanism, the sentence that justifies it, and its citation keys."""
    g = gene.upper()
    cls = consequence_class(consequence)
    if g == "FAS":
        if cls == "none":
            return "none_expected", "no change to the FAS protein is predicted", []
        if cls == "unknown":
            return None, "the consequence is not known, so no mechanism is predicted", []
        if cls == "splice":
            return (
                "uncertain",
                "splice variants can skip an exon (in frame, e.g. exon 6 skipping removes the "
                "transmembrane domain) or trigger decay of the transcript; the effect needs RNA or "
                "protein studies",
                ["agrebi2017"],
            )
        if position is None or region is None:
            return None, "the residue is not known, so the mechanism cannot be placed", []
        if cls == "truncating":
            if position == 1 or (consequence and "start_lost" in consequence) or region in (
                "signal_peptide",
                "extracellular",
                "transmembrane",
            ):
                where = _fas_exon_phrase(position)
                return (
                    "haploinsufficiency",
                    f"truncation before the cytoplasmic region{where}: frameshift and nonsense "
                    "mutations before exon 7 gave FAS mRNA haploinsufficiency, with lower "
                    "penetrance than death-domain mutations",
                    ["genetmed2012_fas_nondd", "teachey_review2012", "price2014"],
                )
            if domain == "death_domain" or (position is not None and position < 230):
                return (
                    "dominant_negative",
                    "truncation in the cytoplasmic region removes (part of) the death domain; the "
                    "mutant chain still binds wild-type FAS through the PLAD and blocks signalling "
                    "(dominant interference)",
                    ["price2014", "teachey_review2012"],
                )
            return (
                "uncertain",
                "truncation after the death domain (residue > 314): the death domain is kept; "
                "effect uncertain",
                ["uniprot_p25445"],
            )
        # non-truncating (missense / in-frame)
        if region == "intracellular":
            where = "death domain" if domain == "death_domain" else "cytoplasmic region"
            return (
                "dominant_negative",
                f"intracellular ({where}) missense / in-frame change: dominant-negative, with much "
                "higher penetrance than haploinsufficient extracellular mutations",
                ["teachey_review2012", "price2014"],
            )
        if region == "signal_peptide":
            return (
                "haploinsufficiency",
                "signal peptide change: an amino-terminal signal sequence mutation prevented "
                "cell-surface FAS (less functional FAS); lower penetrance than death-domain mutations",
                ["genetmed2012_fas_nondd", "price2014"],
            )
        if region == "extracellular":
            return (
                "dominant_negative",
                "extracellular missense / in-frame change: such mutations expressed defective FAS "
                "that failed to bind FAS ligand and interfered dominantly with FAS signalling in "
                "vitro, but carriers had lower penetrance than carriers of death-domain mutations",
                ["genetmed2012_fas_nondd", "price2014"],
            )
        return (
            "uncertain",
            "transmembrane change: no retrieved source assigns it a mechanism",
            [],
        )
    if g == "FASLG":
        if cls == "none":
            return "none_expected", "no change to the FasL protein is predicted", []
        return (
            "loss_of_function",
            "ALPS-FASLG is usually biallelic loss of function; a mechanism by domain is not "
            "established",
            ["genereviews_alps"],
        )
    if g == "CASP10":
        if cls == "none":
            return "none_expected", "no change to the caspase-10 protein is predicted", []
        return (
            "not_established",
            "mechanism of CASP10 variants is variant-specific (UniProt: p.Ile406Leu dominant-"
            "negative; p.Val410Ile and p.Tyr446Cys not) and ALPS-CASP10 causality is disputed",
            ["uniprot_q92851", "genereviews_alps"],
        )
    return None, "mechanism not assessed (not an ALPS gene)", []


def _fas_exon_phrase(position: int | None) -> str:
    """' (codon N, exon E of NM_000043.6)' from the cited exon table, or ''."""
    table = dom.exon_table("FAS")
    if table is None or position is None or position < 1:
        return ""
    exons = sorted(table.codon_exons(position))
    if not exons:
        return ""
    label = "/".join(str(e) for e in exons)
    return f" (codon {position}, exon {label} of {table.transcript})"


def _position(ci: Interpretation | None, pi: Interpretation | None) -> tuple[int | None, bool, list[str]]:
    if pi is not None and pi.protein_start is not None:
        acc = [n for n in (ci.accession_notes if ci else []) if n not in pi.notes]
        return pi.protein_start, False, acc + list(pi.notes)
    notes: list[str] = list(pi.notes) if pi else []
    if ci is not None:
        notes += ci.notes
        if ci.protein_start is not None:
            return ci.protein_start, True, notes
    return None, False, notes


@dataclass
class _ExonCall:
    exon: str | None
    intron: str | None
    basis: str | None
    considerations: list[str] = field(default_factory=list)
    citations: list[str] = field(default_factory=list)


def _same_transcript(accession: str | None, transcript: str) -> bool:
    return accession is None or accession.partition(".")[0] == transcript.partition(".")[0]


def _exon_call(
    gene: str,
    table: dom.ExonTable | None,
    ci: Interpretation | None,
    pi: Interpretation | None,
    exon: str | None,
    intron: str | None,
) -> _ExonCall:
    """Exon/intron of a variant: as given (VCF), else from the cited exon table.

    From a c. change: its exon or intron (c.N+k / c.N-k: the intron after / before the
    exon ending / starting at c.N). From a p. change alone: the exon(s) of its codon(s);
    a codon split by an intron is reported as spanning both exons ("5-6/9").
    """
    given = exon is not None or intron is not None
    if given:
        basis = (
            "from the VCF annotation (VEP EXON / SnpEff Rank, exon/total)"
            if exon is not None
            else f"intron {intron} from the VCF annotation (VEP INTRON / SnpEff Rank)"
        )
    else:
        basis = None
    if table is None:
        if given:
            return _ExonCall(exon, intron, basis)
        status = dom.exon_table_status(gene)
        return _ExonCall(None, None, status or f"not computed: no cited exon table for {gene}")
    cites = list(table.citations)
    notes: list[str] = []
    loc: dom.ExonLocation | None = None
    source = ""
    if ci is not None and ci.c_start is not None:
        if not _same_transcript(ci.accession, table.transcript):
            why = (
                f"exon not computed: {ci.accession} is not {table.transcript}, the transcript of "
                f"the {gene} exon table"
            )
            return _ExonCall(exon, intron, basis or why, [] if given else [why], [])
        loc = table.locate(ci.c_start, ci.c_end)
        end = f"_{ci.c_end}" if ci.c_end is not None and ci.c_end != ci.c_start else ""
        source = f"{ci.c_start}{end}"
        if ci.accession is None:
            source += f" (read on {table.transcript})"
    elif pi is not None and pi.protein_start is not None:
        first = pi.protein_start
        last = pi.protein_end if pi.protein_end is not None else first
        nums = table.exons_of_codons(first, last)
        if not nums:
            loc = dom.ExonLocation(None, None, f"residue {first} is outside the coding exons of {table.transcript}")
        else:
            loc = dom.ExonLocation(
                f"{nums[0]}/{table.exon_count}" if len(nums) == 1
                else f"{nums[0]}-{nums[-1]}/{table.exon_count}",
                None,
            )
            source = f"codon {first}" if first == last else f"codons {first}-{last}"
            if first == last and len(nums) > 1:
                parts = "; ".join(
                    f"c.{bs[0]}" + (f"-c.{bs[-1]}" if len(bs) > 1 else "") + f" in exon {e}"
                    for e, bs in sorted(table.codon_exons(first).items())
                )
                notes.append(
                    f"codon {first} spans the junction of exons {nums[0]} and {nums[-1]} of "
                    f"{table.transcript} ({parts}); the exon cannot be one number"
                )
    if loc is None:
        return _ExonCall(exon, intron, basis, [], [])
    if loc.problem:
        notes.append(f"exon not computed: {loc.problem}")
        return _ExonCall(exon, intron, basis or f"not computed: {loc.problem}", notes, [])
    if table.note:
        notes.append(table.note)
    computed = (
        f"exon {loc.exon}" if loc.exon and not loc.intron
        else f"intron {loc.intron}" if loc.intron and not loc.exon
        else f"exon {loc.exon}, intron {loc.intron}"
    )
    if given:
        agrees = (exon is None or exon == loc.exon) and (intron is None or intron == loc.intron)
        if agrees:
            return _ExonCall(
                exon, intron, f"{basis}; agrees with the cited exon table ({computed})", notes, cites
            )
        notes.append(
            f"the VCF annotation gives {'exon ' + exon if exon else 'intron ' + str(intron)} but the "
            f"cited {table.transcript} exon table gives {computed} for {source}: check that the "
            "annotation used the MANE transcript"
        )
        return _ExonCall(exon, intron, basis, notes, cites)
    return _ExonCall(
        loc.exon,
        loc.intron,
        f"{computed} of {table.transcript}, from {source} with the cited exon table",
        notes,
        cites,
    )


def _skipping_note(table: dom.ExonTable, ci: Interpretation | None) -> str | None:
    """For a canonical splice-site change (+1/+2, -1/-2): what skipping the adjacent exon does.

    Donor sites (c.N+1/+2) belong to the exon ending at c.N, acceptor sites (c.N-1/-2) to
    the exon starting at c.N; only internal exons that hold neither the start nor the stop
    codon are considered (e.g. not CASP10 exon 2, which holds the ATG). The reading-frame effect
    follows from the exon length in the cited table; whether the exon is skipped (rather
    than a cryptic site used or the transcript decayed) needs RNA studies.
    """
    if ci is None or ci.c_start is None or not ci.c_start.offset or abs(ci.c_start.offset) > 2:
        return None
    if ci.c_end is not None and ci.c_end != ci.c_start:
        return None
    if not _same_transcript(ci.accession, table.transcript):
        return None
    base, offset = ci.c_start.base, ci.c_start.offset
    for n, lo, hi in table.rows:
        if lo is None or hi is None:
            continue  # first/last exon: skipping is not a simple in-frame question
        if lo < 2 or hi > table.cds_length - 3:
            continue  # holds the start or stop codon (or only UTR): not a frame question either
        if (offset > 0 and hi == base) or (offset < 0 and lo == base):
            length = hi - lo + 1
            first, last = (lo + 2) // 3, (hi + 2) // 3
            frame = (
                f"in frame ({length} nt, {length // 3} codons; codons {first}-{last} affected)"
                if length % 3 == 0
                else f"a frameshift ({length} nt, not a multiple of 3; from codon {first})"
            )
            site = "donor" if offset > 0 else "acceptor"
            return (
                f"{ci.c_start} is at the {site} site of exon {n} of {table.transcript} "
                f"(c.{lo}-c.{hi}); if exon {n} is skipped the result is {frame}; RNA studies "
                "show whether it is skipped"
            )
    return None


def annotate(
    variant: Variant,
    *,
    companions: Iterable[Variant] = (),
    exon: str | None = None,
    depths: Mapping[str | None, int | None] | None = None,
    intron: str | None = None,
    exon_tables: Mapping[str, dom.ExonTable] | None = None,
) -> AnnotatedVariant:
    """Annotate one variant. ``companions``: the same change in other samples (for origin).

    ``exon``/``intron``: as the VCF annotation gives them (VEP EXON/INTRON, SnpEff Rank);
    without them the exon (or intron) is computed from the c. position, or from the codon
    of the p. position, with the gene's cited exon table (knowledge/data/protein_domains.yaml
    ``exon_table``); a given exon that disagrees with the table is flagged.
    ``exon_tables``: gene -> table, replacing the knowledge data (tests, other transcripts).
    """
    gene = variant.gene.upper()
    considerations: list[str] = []
    cites: list[str] = []
    try:
        ci, pi = interpret(variant.hgvs_c, variant.hgvs_p, gene)
    except VariantError as err:
        raise VariantError(
            err.message, field=f"variant {gene}", value=err.value, expected=err.expected
        ) from None
    position, from_c, notes = _position(ci, pi)
    considerations += notes
    consequence = variant.consequence or (pi.consequence if pi else None) or (ci.consequence if ci else None)
    if consequence == "protein_effect_unknown":
        consequence = ci.consequence if ci else None
    # A p. change that disagrees with the c. position by more than one residue is flagged.
    if ci and pi and ci.protein_start and pi.protein_start and abs(ci.protein_start - pi.protein_start) > 1:
        considerations.append(
            f"the c. change maps to residue {ci.protein_start} but the p. change names residue "
            f"{pi.protein_start}: check the transcript"
        )
    row = related_gene(gene)
    is_alps = bool(row and row.get("is_alps"))
    domain = domain_label = region = None
    exon_basis: str | None = (
        "from the VCF annotation (VEP EXON / SnpEff Rank, exon/total)" if exon is not None else None
    )
    if exon is None and intron is not None:
        exon_basis = f"intron {intron} from the VCF annotation (VEP INTRON / SnpEff Rank)"
    if dom.has_domain_map(gene):
        cites.append(str(dom.gene_map(gene)["citation"]))
        cls = consequence_class(consequence)
        if cls == "none" and (consequence or "").split("&")[0] in (
            "5_prime_UTR_variant",
            "3_prime_UTR_variant",
            "intron_variant",
        ):
            region = "non_coding"
        elif position is not None:
            loc = dom.locate(gene, position)
            if loc.beyond_end:
                considerations.append(
                    f"residue {position} lies beyond the {gene} MANE protein "
                    f"({dom.gene_map(gene)['protein_length']} residues)"
                )
            region = loc.region
            domain, domain_label = loc.domain, loc.domain_label
            if from_c:
                considerations.append(
                    f"domain placed from the c. position (residue {position}); give the p. change to confirm"
                )
        elif cls == "none":
            region = "non_coding"
        table = (exon_tables or {}).get(gene) if exon_tables is not None else dom.exon_table(gene)
        ex = _exon_call(gene, table, ci, pi, exon, intron)
        exon, intron, exon_basis = ex.exon, ex.intron, ex.basis
        considerations += ex.considerations
        cites += ex.citations
        skip = _skipping_note(table, ci) if table is not None else None
        if skip and table is not None:
            considerations.append(skip)
            cites += list(table.citations)
        if position is not None:
            for text, cite in dom.residue_notes(gene, position):
                considerations.append(f"{text} [{cite}]")
                cites.append(cite)
        if exon is None and intron is None:
            facts = dom.gene_map(gene).get("exon_facts", ())
            if domain == "death_domain" or region == "transmembrane":
                for f in facts:
                    if (domain == "death_domain" and "death domain" in f["text"]) or (
                        region == "transmembrane" and "transmembrane" in f["text"]
                    ):
                        considerations.append(f"exon not computed; known: {f['text']} [{f['citation']}]")
                        cites.append(str(f["citation"]))
    mech, mech_basis, mech_cites = mechanism_for(gene, consequence, region, domain, position)
    cites += mech_cites
    if consequence == "coding_sequence_variant" and gene == "FAS" and mech in (
        "dominant_negative",
        "haploinsufficiency",
    ):
        mech_basis += " (assuming a missense effect: the p. change was not given)"
    # origin
    oc: OriginCall = infer_origin(variant, companions, depths)
    cites += list(oc.citations)
    classification = variant.classification or "not_reported"
    meets = is_alps and variant.is_pathogenic
    cites.append("oliveira2010")
    if is_alps:
        if classification == "vus":
            considerations.append(
                "variant of uncertain significance: it does NOT satisfy the mutation criterion "
                "(pathogenic or likely pathogenic FAS/FASLG/CASP10 variant)"
            )
        elif classification == "not_reported":
            considerations.append(
                "no ACMG classification given: the variant does not satisfy the mutation criterion "
                "until the lab classifies it pathogenic or likely pathogenic"
            )
        elif classification in ("likely_benign", "benign"):
            considerations.append(f"{classification.replace('_', ' ')}: not disease-causing")
    subtype: str | None = None
    if meets and row is not None:
        if gene == "FAS":
            if oc.origin == "somatic":
                subtype = "ALPS-sFAS"
            elif oc.origin == "germline":
                subtype = "ALPS-FAS"
            else:
                considerations.append(
                    "origin unknown: ALPS-FAS (germline) or ALPS-sFAS (somatic); "
                    "sequence a second tissue or sorted DNT to tell"
                )
        else:
            subtype = row.get("subtype_germline")
    if oc.suggests_sfas and gene == "FAS":
        considerations.append("somatic FAS enriched in sorted DNT: pattern of ALPS-sFAS")
    related_disorder = None
    if row is not None:
        cites.append(str(row["citation"]))
        if row.get("note"):
            considerations.append(f"{gene}: {row['note']}")
        iuis = row.get("iuis")
        if iuis and row.get("iuis_status") == "confirmed":
            considerations.append(
                f"IUIS {iuis['edition']} classification, Table {iuis['table']}: {iuis['disease']} "
                f"({iuis['gene_listed']}, {iuis['inheritance']}) [tangye2022]"
            )
            cites.append("tangye2022")
        if not is_alps:
            related_disorder = str(row["disorder"])
            considerations.insert(
                0,
                f"{gene} is not an ALPS gene: consider {row['disorder']} as a differential "
                "diagnosis, not ALPS",
            )
            if row.get("somatic") and oc.origin == "germline":
                considerations.append(
                    f"{row['disorder']} is defined by SOMATIC variants; this variant looks germline"
                )
    else:
        considerations.insert(0, f"{gene} is not on the ALPS panel or its related-disorder table")
    if gene == "FASLG" and meets and variant.zygosity == "heterozygous":
        considerations.append(
            "ALPS-FASLG is usually biallelic: a single heterozygous FASLG variant may not explain ALPS"
        )
    if gene == "CASP10" and meets:
        considerations.append("ALPS-CASP10 causality is disputed (see the CASP10 note)")
    risk = risk_for(gene, oc.origin, region, variant.classification)
    cites += list(risk["citations"])
    zyg = variant.zygosity
    if zyg == "unknown" and oc.zygosity_hint:
        considerations.append(f"zygosity not reported; VAF is consistent with {oc.zygosity_hint}")
    seen: list[str] = []
    for c in cites:
        if c and c not in seen:
            seen.append(c)
    return AnnotatedVariant(
        gene=gene,
        hgvs_c=variant.hgvs_c,
        hgvs_p=variant.hgvs_p,
        consequence=consequence,
        protein_position=position,
        domain=domain,
        domain_label=domain_label,
        region=region,
        mechanism=mech,
        mechanism_basis=mech_basis,
        origin=oc.origin,
        origin_basis=oc.basis,
        classification=classification,
        meets_mutation_criterion=meets,
        subtype_hint=subtype,
        related_disorder=related_disorder,
        is_alps_gene=is_alps,
        zygosity=zyg,
        vaf=variant.vaf,
        sample=variant.sample,
        exon=exon,
        considerations=considerations,
        risk=risk,
        citations=seen,
        intron=intron,
        exon_basis=exon_basis,
    )


def annotate_all(
    variants: Sequence[Variant],
    *,
    exons: Mapping[int, str | None] | None = None,
    depths: Mapping[int, int | None] | None = None,
    introns: Mapping[int, str | None] | None = None,
    exon_tables: Mapping[str, dom.ExonTable] | None = None,
) -> list[AnnotatedVariant]:
    """Annotate a list; the same change in several samples informs each one's origin.

    ``exons``/``depths``/``introns`` are keyed by index into ``variants``.
    """
    exons = exons or {}
    depths = depths or {}
    introns = introns or {}
    index = {id(v): i for i, v in enumerate(variants)}
    out: list[AnnotatedVariant | None] = [None] * len(variants)
    for group in group_same_change(variants):
        dmap = {v.sample: depths.get(index[id(v)]) for v in group}
        for v in group:
            i = index[id(v)]
            out[i] = annotate(
                v, companions=group, exon=exons.get(i), depths=dmap, intron=introns.get(i),
                exon_tables=exon_tables,
            )
    return [a for a in out if a is not None]
