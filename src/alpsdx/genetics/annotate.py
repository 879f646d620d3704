"""One variant -> domain, region, expected mechanism, origin, classification and risk.

Pure: no I/O. Mechanism (FAS): intracellular, especially death-domain, missense and
in-frame changes and truncations that remove the death domain act dominant-negatively;
extracellular changes and early truncations are haploinsufficient, with lower penetrance
(Teachey 2012, PMID 22157362; Price 2014). A VUS never satisfies the mutation criterion
(Oliveira 2010); it is shown as a VUS with its domain.
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
                return (
                    "haploinsufficiency",
                    "truncation before the cytoplasmic region: no functional membrane FAS is made "
                    "from this allele (haploinsufficiency, lower penetrance than intracellular "
                    "dominant-negative mutations)",
                    ["teachey_review2012", "price2014"],
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
        if region in ("extracellular", "signal_peptide"):
            return (
                "haploinsufficiency",
                f"{region.replace('_', ' ')} change: haploinsufficiency is the expected mechanism, "
                "with lower penetrance than intracellular dominant-negative mutations",
                ["teachey_review2012", "price2014"],
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


def annotate(
    variant: Variant,
    *,
    companions: Iterable[Variant] = (),
    exon: str | None = None,
    depths: Mapping[str | None, int | None] | None = None,
    intron: str | None = None,
) -> AnnotatedVariant:
    """Annotate one variant. ``companions``: the same change in other samples (for origin).

    ``exon``/``intron``: as the VCF annotation gives them (VEP EXON/INTRON, SnpEff Rank);
    without them the exon is computed from the residue only where the knowledge data
    pins it (knowledge/data/protein_domains.yaml ``exons``).
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
        if exon is not None:
            exon_basis = "from the VCF annotation (VEP EXON / SnpEff Rank, exon/total)"
        elif intron is not None:
            exon_basis = f"intron {intron} from the VCF annotation (VEP INTRON / SnpEff Rank)"
        elif position is not None and ci is not None and ci.intronic_offset:
            exon_basis = "intronic change: no exon (give the lab's intron number)"
        elif position is not None:
            ec = dom.exon_for(gene, position)
            if ec is not None:
                exon = f"{ec.exon}/{ec.exon_count}" if ec.exon_count else str(ec.exon)
                exon_basis = f"residue {position}: {ec.basis}"
                cites += list(ec.citations)
            else:
                exon_basis = (
                    f"not computed: the exon boundaries of {gene} other than those cited in "
                    "knowledge/data/protein_domains.yaml are not in the knowledge data"
                )
        if position is not None:
            for text, cite in dom.residue_notes(gene, position):
                considerations.append(f"{text} [{cite}]")
                cites.append(cite)
        if exon is None:
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
                v, companions=group, exon=exons.get(i), depths=dmap, intron=introns.get(i)
            )
    return [a for a in out if a is not None]
