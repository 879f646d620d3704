"""Writes the small VCF fixtures in this folder (run: python make_fixtures.py).

All variants are project-made test data on GRCh38-like positions: they exercise the
reader and the annotation (domain, mechanism, origin), they are not patient data and
their classifications are invented for the tests.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent

CSQ_FORMAT = (
    "Allele|Consequence|IMPACT|SYMBOL|Gene|Feature_type|Feature|BIOTYPE|EXON|INTRON|"
    "HGVSc|HGVSp|MANE_SELECT|CANONICAL|CLIN_SIG"
)
ANN_FORMAT = (
    "Allele | Annotation | Annotation_Impact | Gene_Name | Gene_ID | Feature_Type | "
    "Feature_ID | Transcript_BioType | Rank | HGVS.c | HGVS.p | cDNA.pos / cDNA.length | "
    "CDS.pos / CDS.length | AA.pos / AA.length | Distance | ERRORS / WARNINGS / INFO"
)


def header(samples: list[str], ann: str | None = "CSQ") -> str:
    lines = [
        "##fileformat=VCFv4.2",
        "##reference=GRCh38",
        "##contig=<ID=chr1,length=248956422>",
        "##contig=<ID=chr10,length=133797422>",
        "##contig=<ID=chr13,length=114364328>",
        '##FILTER=<ID=LowQual,Description="Low quality">',
        '##INFO=<ID=CLNSIG,Number=.,Type=String,Description="Clinical significance (ClinVar)">',
        '##INFO=<ID=SOMATIC,Number=0,Type=Flag,Description="Somatic call">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">',
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">',
        '##FORMAT=<ID=AF,Number=A,Type=Float,Description="Allele fraction">',
    ]
    if ann == "CSQ":
        lines.append(
            '##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations from '
            f'Ensembl VEP. Format: {CSQ_FORMAT}">'
        )
    elif ann == "ANN":
        lines.append(
            '##INFO=<ID=ANN,Number=.,Type=String,Description="Functional annotations: '
            f"'{ANN_FORMAT}' \">"
        )
    cols = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
    if samples:
        cols += ["FORMAT", *samples]
    lines.append("\t".join(cols))
    return "\n".join(lines) + "\n"


def csq(allele: str, cons: str, symbol: str, feature: str, exon: str, hgvsc: str, hgvsp: str,
        mane: str = "", canonical: str = "", clin: str = "", intron: str = "") -> str:
    impact = "HIGH" if any(k in cons for k in ("stop", "frameshift", "splice_acc", "splice_don")) else "MODERATE"
    return "|".join([allele, cons, impact, symbol, "ENSG0", "Transcript", feature, "protein_coding",
                     exon, intron, hgvsc, hgvsp, mane, canonical, clin])


def row(chrom: str, pos: int, ref: str, alt: str, info: str, fmt: str = "", *samples: str,
        flt: str = "PASS") -> str:
    cols = [chrom, str(pos), ".", ref, alt, "60", flt, info]
    if fmt:
        cols += [fmt, *samples]
    return "\t".join(cols) + "\n"


FAS_D260G = csq("G", "missense_variant", "FAS", "NM_000043.6", "9/9",
                "NM_000043.6:c.779A>G", "NP_000034.1:p.Asp260Gly", "NM_000043.6", "YES")
FAS_D260G_ALT_TX = csq("G", "missense_variant", "FAS", "NM_152871.4", "8/8",
                       "NM_152871.4:c.716A>G", "NP_690610.1:p.Asp239Gly")
BRCA2 = csq("T", "missense_variant", "BRCA2", "NM_000059.4", "11/27",
            "NM_000059.4:c.5000C>T", "NP_000050.3:p.Ala1667Val", "NM_000059.4", "YES")


def write(name: str, text: str) -> None:
    (HERE / name).write_text(text, encoding="utf-8")


def main() -> None:
    # 1. Germline death-domain missense (VEP CSQ, ClinVar CLNSIG), plus a non-panel record.
    write("germline_dd_missense.vep.vcf", header(["proband"]) +
          row("chr10", 88990000, "A", "G", f"CLNSIG=Pathogenic;CSQ={FAS_D260G_ALT_TX},{FAS_D260G}",
              "GT:AD:DP", "0/1:20,18:38") +
          row("chr13", 32340000, "C", "T", f"CSQ={BRCA2}", "GT:AD:DP", "0/1:15,15:30"))
    # 2. Extracellular nonsense, SnpEff ANN.
    ann = "|".join(["T", "stop_gained", "HIGH", "FAS", "FAS", "transcript", "NM_000043.6",
                    "protein_coding", "", "c.361C>T", "p.Arg121*", "", "", "", "", ""])
    write("extracellular_nonsense.snpeff.vcf", header(["proband"], ann="ANN") +
          row("chr10", 88970000, "C", "T", f"CLNSIG=Likely_pathogenic;ANN={ann}", "GT:AD:DP",
              "0/1:25,23:48"))
    # 3. Splice acceptor, no protein change given.
    sp = csq("A", "splice_acceptor_variant", "FAS", "NM_000043.6", "", "NM_000043.6:c.506-1G>A", "",
             "NM_000043.6", "YES", "pathogenic", intron="5/8")
    write("splice_site.vep.vcf", header(["proband"]) +
          row("chr10", 88980000, "G", "A", f"CSQ={sp}", "GT:AD:DP", "0/1:30,29:59"))
    # 4. Multi-sample: somatic in sorted DNT (low in blood), a germline het in both, and a
    #    relative who carries neither.
    dd = csq("C", "missense_variant", "FAS", "NM_000043.6", "9/9", "NM_000043.6:c.929T>G",
             "NP_000034.1:p.Ile310Ser", "NM_000043.6", "YES", "pathogenic")
    ec = csq("A", "missense_variant", "FAS", "NM_000043.6", "", "NM_000043.6:c.362G>A",
             "NP_000034.1:p.Arg121Gln", "NM_000043.6", "YES", "likely_pathogenic")
    write("multi_sample_dnt.vep.vcf", header(["whole_blood", "sorted_DNT", "relative"]) +
          row("chr10", 88991000, "T", "C", f"CSQ={dd}", "GT:AD:DP",
              "0/1:190,10:200", "0/1:60,40:100", "0/0:80,0:80") +
          row("chr10", 88970100, "G", "A", f"CSQ={ec}", "GT:AD:DP",
              "0/1:52,48:100", "0/1:45,55:100", "0/0:70,0:70"))
    # 5. Somatic low VAF in one blood sample (AF from a somatic caller).
    lo = csq("A", "missense_variant", "FAS", "NM_000043.6", "9/9", "NM_000043.6:c.749G>A",
             "NP_000034.1:p.Arg250Gln", "NM_000043.6", "YES", "pathogenic")
    write("somatic_low_vaf.vep.vcf", header(["blood"]) +
          row("chr10", 88990500, "G", "A", f"CSQ={lo}", "GT:AF:DP", "0/1:0.12:250"))
    # 6. NRAS somatic (RALD), SOMATIC flag.
    nras = csq("T", "missense_variant", "NRAS", "NM_002524.5", "2/7", "NM_002524.5:c.35G>A",
               "NP_002515.1:p.Gly12Asp", "NM_002524.5", "YES", "pathogenic")
    write("nras_somatic.vep.vcf", header(["blood"]) +
          row("chr1", 114716126, "C", "T", f"SOMATIC;CSQ={nras}", "GT:AD:DP", "0/1:184,16:200"))
    # 7. A VUS in the transmembrane helix.
    vus = csq("A", "missense_variant", "FAS", "NM_000043.6", "", "NM_000043.6:c.538G>A",
              "NP_000034.1:p.Val180Met", "NM_000043.6", "YES")
    write("vus.vep.vcf", header(["proband"]) +
          row("chr10", 88985000, "G", "A", f"CLNSIG=Uncertain_significance;CSQ={vus}", "GT:AD:DP",
              "0/1:40,38:78"))
    # 8. No CSQ/ANN at all.
    write("no_annotation.vcf", header(["proband"], ann=None) +
          row("chr10", 88990000, "A", "G", ".", "GT:AD:DP", "0/1:20,18:38"))
    # Malformed files.
    good = row("chr10", 88990000, "A", "G", f"CSQ={FAS_D260G}", "GT:AD:DP", "0/1:20,18:38")
    write("malformed_pos.vcf", header(["proband"]) + good +
          row("chr10", 0, "A", "G", f"CSQ={FAS_D260G}", "GT:AD:DP", "0/1:20,18:38").replace("\t0\t", "\tPOS\t", 1))
    write("malformed_columns.vcf", header(["proband"]) + good + "chr10\t88990100\t.\tA\n")
    write("not_a_vcf.vcf", "this is a lab report, not a VCF\nFAS c.779A>G\n")


if __name__ == "__main__":
    main()
