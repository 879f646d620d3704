"""The genetics knowledge data: cited, complete, consistent with the issue's gene lists."""

from __future__ import annotations

import itertools

import pytest

from alpsdx import knowledge
from alpsdx.genetics.domains import ALPS_GENES, accession_gene, gene_map
from alpsdx.genetics.risk import fas_lymphoma_risk, panel_genes, related_gene, risk_for


@pytest.mark.parametrize("gene", ALPS_GENES)
def test_regions_tile_the_protein_and_every_feature_is_cited(gene: str) -> None:
    m = gene_map(gene)
    n = int(m["protein_length"])
    regions = sorted(m["regions"], key=lambda r: int(r["start"]))
    assert int(regions[0]["start"]) == 1 and int(regions[-1]["end"]) == n
    for a, b in itertools.pairwise(regions):
        assert int(b["start"]) == int(a["end"]) + 1
    assert {r["region"] for r in regions} <= {"signal_peptide", "extracellular", "transmembrane", "intracellular"}
    for d in m["domains"]:
        assert int(d["start"]) >= 1 and int(d["start"]) <= int(d["end"]) <= n
        assert knowledge.resolve_citation(str(d["citation"]))
    assert knowledge.resolve_citation(str(m["citation"]))
    table = m.get("exon_table")
    if table:
        for c in table["citations"]:
            assert knowledge.resolve_citation(str(c))
    else:
        assert str(m["exon_table_status"]).startswith("not computed")
    for f in m.get("exon_facts", ()):
        assert knowledge.resolve_citation(str(f["citation"]))


@pytest.mark.parametrize(
    ("acc", "gene", "noted"),
    [("NM_000043.6", "FAS", False), ("NP_000034.1", "FAS", False), ("NM_000043.5", "FAS", True),
     ("NM_000639.3", "FASLG", False), ("NP_000630.1", "FASLG", False),
     ("NM_032977.4", "CASP10", False), ("NP_116759.2", "CASP10", False), ("NM_032977.3", "CASP10", True)],
)
def test_mane_accessions(acc: str, gene: str, noted: bool) -> None:
    found = accession_gene(acc)
    assert found is not None and found[0] == gene and (found[1] is not None) == noted


def test_issue_named_related_genes_are_differentials_not_alps() -> None:
    for g in ("NRAS", "KRAS", "CASP8", "CTLA4", "LRBA", "STAT3", "PIK3CD"):
        row = related_gene(g)
        assert row is not None and row["is_alps"] is False, g
        assert knowledge.resolve_citation(str(row["citation"]))
    assert related_gene("NRAS")["somatic"] is True and "RALD" in related_gene("KRAS")["disorder"]
    assert "CEDS" in related_gene("CASP8")["disorder"]
    for g in ALPS_GENES:
        assert related_gene(g)["is_alps"] is True
    assert set(ALPS_GENES) <= set(panel_genes())


def test_lymphoma_risk_rows_are_cited() -> None:
    rows = knowledge.load("related_genes")["fas_lymphoma_risk"]
    for key in rows:
        r = fas_lymphoma_risk(key)
        for c in r["citations"]:
            assert knowledge.resolve_citation(c)
    assert "x14" in rows["germline_intracellular"]["text"] and "x51" in rows["germline_intracellular"]["text"]
    for key in ("germline_intracellular", "germline_extracellular"):
        assert "penetrance of FAS mutations was below 60%" in rows[key]["text"]
        assert "price2014" in rows[key]["citations"]


@pytest.mark.parametrize(
    ("gene", "origin", "region", "cls", "category"),
    [
        ("FAS", "germline", "intracellular", "pathogenic", "highest"),
        ("FAS", "germline", "extracellular", "likely_pathogenic", "elevated"),
        ("FAS", "germline", "signal_peptide", "pathogenic", "elevated"),
        ("FAS", "germline", "transmembrane", "pathogenic", "elevated"),
        ("FAS", "germline", None, "pathogenic", "elevated"),
        ("FAS", "somatic", "intracellular", "pathogenic", "not_established"),
        ("FAS", "germline", "intracellular", "vus", "not_applicable"),
        ("FAS", "germline", "intracellular", "benign", "not_applicable"),
        ("FAS", "germline", "intracellular", None, "unclassified"),
        ("FASLG", "germline", "extracellular", "pathogenic", "not_established"),
        ("NRAS", "somatic", None, "pathogenic", "differential_diagnosis"),
        ("BRCA2", "germline", None, "pathogenic", "not_assessed"),
    ],
)
def test_risk_categories(gene: str, origin: str, region: str | None, cls: str | None, category: str) -> None:
    assert risk_for(gene, origin, region, cls)["category"] == category


def test_transmembrane_risk_text_says_where_it_is() -> None:
    text = risk_for("FAS", "germline", "transmembrane", "pathogenic")["text"]
    assert "transmembrane helix" in text and "not known" not in text


# IUIS 2022 rows as printed in Tangye et al., J Clin Immunol 2022 (tangye2022), Tables 3, 4, 10.
IUIS_2022 = {
    "FAS": ("4.6", "AD; AR"), "FASLG": ("4.6", "AR"), "CASP10": ("4.6", "AD"),
    "CASP8": ("4.6", "AR"), "FADD": ("4.6", "AR"), "PRKCD": ("4.7", "AR"), "TET2": ("4.7", "AR"),
    "CTLA4": ("4.3", "AD"), "LRBA": ("4.3", "AR"), "STAT3": ("4.3", "AD GOF"),
    "PIK3CD": ("3.2", "AD GOF"), "PIK3R1": ("3.2", "AD"), "NFKB1": ("3.2", "AD"),
    "NRAS": ("10", "somatic mutation (GOF)"), "KRAS": ("10", "somatic mutation (GOF)"),
}


@pytest.mark.parametrize(("gene", "row"), sorted(IUIS_2022.items()))
def test_iuis_2022_rows_confirmed(gene: str, row: tuple[str, str]) -> None:
    entry = related_gene(gene)
    assert entry is not None and entry["iuis_status"] == "confirmed"
    assert (entry["iuis"]["table"], entry["iuis"]["inheritance"]) == row
    assert knowledge.resolve_citation("tangye2022")


def test_every_related_gene_row_has_a_sourced_inheritance() -> None:
    for e in knowledge.load("related_genes")["genes"]:
        assert e["inheritance"], e["gene"]
        assert knowledge.resolve_citation(str(e.get("inheritance_citation", e["citation"])))
        if e["iuis_status"] == "confirmed":
            ai = e["iuis"]["inheritance"]
            expected = {"autosomal_dominant": "AD", "autosomal_recessive": "AR", "somatic": "somatic",
                        "usually_biallelic": "AR"}[e["inheritance"]]
            assert ai.startswith(expected), e["gene"]
