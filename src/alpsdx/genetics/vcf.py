"""Annotated VCF input (plain or bgzipped) with cyvcf2: panel genes only.

Reads the VEP ``CSQ`` or SnpEff ``ANN`` annotation (field order from the header), ClinVar
``CLNSIG``/``ORIGIN`` where present, and per sample the genotype, depth and VAF (from
``AD``, else ``AF``). Records whose annotation names no panel gene are skipped with one
regular-expression test on the raw annotation string, before any splitting: that keeps a
whole-genome VCF fast. Malformed files and lines raise ``VariantError`` naming the line.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from alpsdx.errors import VariantError
from alpsdx.genetics import domains as dom
from alpsdx.genetics.hgvs_input import _parse_one
from alpsdx.genetics.risk import panel_genes
from alpsdx.model import Variant

__all__ = ["VcfCall", "panel_regex", "read_vcf", "read_vcf_calls"]

HOW_TO_ANNOTATE = (
    "a VEP CSQ or SnpEff ANN INFO field; annotate the VCF first, e.g. "
    "'vep --vcf --hgvs --symbol --mane --canonical -i in.vcf -o out.vcf' or "
    "'snpEff ann GRCh38.p14 in.vcf > out.vcf'"
)

_CLNSIG = {
    "pathogenic": "pathogenic",
    "likely_pathogenic": "likely_pathogenic",
    "pathogenic/likely_pathogenic": "likely_pathogenic",
    "uncertain_significance": "vus",
    "likely_benign": "likely_benign",
    "benign": "benign",
    "benign/likely_benign": "likely_benign",
}
_MISSING_INT = -2147483648


@dataclass
class VcfCall:
    """One panel variant in one sample, with what the VCF said about it."""

    variant: Variant
    chrom: str
    pos: int
    ref: str
    alt: str
    transcript: str | None = None
    exon: str | None = None
    depth: int | None = None
    genotype: str | None = None
    filter: str | None = None
    clnsig_raw: str | None = None
    notes: list[str] = field(default_factory=list)


def panel_regex(genes: Sequence[str] | None = None) -> re.Pattern[str]:
    """A regex that finds a panel gene symbol as a whole '|'-delimited annotation field."""
    names = sorted(genes or panel_genes(), key=len, reverse=True)
    return re.compile(r"\|(?:" + "|".join(re.escape(g) for g in names) + r")\|")


def _annotation_format(raw_header: str) -> tuple[str, list[str]]:
    """('CSQ'|'ANN', field names) from the header; VariantError when neither is declared."""
    for line in raw_header.splitlines():
        if line.startswith("##INFO=<ID=CSQ,"):
            m = re.search(r"Format:\s*([^\"]+)", line)
            if not m:
                raise VariantError(
                    "the CSQ header has no 'Format:' list of fields",
                    field="VCF header", value=line[:120], expected="the header VEP writes",
                )
            return "CSQ", [f.strip() for f in m.group(1).strip().split("|")]
    for line in raw_header.splitlines():
        if line.startswith("##INFO=<ID=ANN,"):
            m = re.search(r"'([^']+)'", line)
            names = (
                [f.strip() for f in m.group(1).split("|")]
                if m
                else ["Allele", "Annotation", "Annotation_Impact", "Gene_Name", "Gene_ID",
                      "Feature_Type", "Feature_ID", "Transcript_BioType", "Rank", "HGVS.c", "HGVS.p"]
            )
            return "ANN", names
    raise VariantError(
        "the VCF has no variant annotation (no CSQ or ANN INFO field in the header)",
        field="VCF header", value=None, expected=HOW_TO_ANNOTATE,
    )


def _open_text(path: Path) -> Any:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _diagnose(path: Path, n_ok: int) -> tuple[int | None, str]:
    """Find the first bad line after ``n_ok`` good records: (line number, what is wrong)."""
    seen = 0
    lineno = 0
    ncols_expected: int | None = None
    try:
        with _open_text(path) as fh:
            for lineno, line in enumerate(fh, start=1):
                line = line.rstrip("\n")
                if line.startswith("##"):
                    continue
                if line.startswith("#"):
                    ncols_expected = len(line.split("\t"))
                    continue
                if ncols_expected is None:
                    return lineno, "data line before the '#CHROM' header line"
                if seen < n_ok:
                    seen += 1
                    continue
                cols = line.split("\t")
                if len(cols) < 8:
                    return lineno, f"{len(cols)} tab-separated columns; a VCF data line needs at least 8"
                if ncols_expected and len(cols) != ncols_expected:
                    return lineno, f"{len(cols)} columns but the #CHROM header has {ncols_expected}"
                if not cols[1].isdigit() or int(cols[1]) < 1:
                    return lineno, f"POS {cols[1]!r} is not a positive integer"
                if not re.fullmatch(r"[ACGTNacgtn]+", cols[3]):
                    return lineno, f"REF {cols[3]!r} is not a DNA sequence"
                if len(cols) > 9:
                    nfmt = len(cols[8].split(":"))
                    for i, s in enumerate(cols[9:]):
                        if len(s.split(":")) > nfmt:
                            return lineno, f"sample column {i + 1} has more fields than FORMAT {cols[8]!r}"
                return lineno, "htslib could not parse this line (check INFO/FORMAT values against the header)"
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        return None, f"the file cannot be read to the end ({exc.__class__.__name__}: {exc})"
    return None, "htslib stopped before the end of the file (truncated or corrupt compression?)"


def _vep_trim(ref: str, alt: str) -> str:
    """The allele string VEP writes in CSQ for this REF/ALT (shared first base dropped)."""
    if len(ref) != len(alt) and ref[:1] == alt[:1]:
        return alt[1:] or "-"
    return alt


def _pick(entries: list[list[str]], idx: dict[str, int], gene: str) -> list[str]:
    """The annotation entry to use for one gene: MANE transcript, else canonical, else first."""
    mane = dom.gene_map(gene)["mane"] if dom.has_domain_map(gene) else None
    feat_i = idx.get("Feature", idx.get("Feature_ID"))

    def get(e: list[str], name: str) -> str:
        i = idx.get(name)
        return e[i] if i is not None and i < len(e) else ""

    if mane is not None and feat_i is not None:
        mane_bases = {str(mane[k]).split(".")[0] for k in ("nm", "ensembl_transcript")}
        for e in entries:
            if feat_i < len(e) and e[feat_i].split(".")[0] in mane_bases:
                return e
    for e in entries:
        if get(e, "MANE_SELECT") or get(e, "MANE"):
            return e
    for e in entries:
        if get(e, "CANONICAL") == "YES":
            return e
    for e in entries:
        if get(e, "HGVSc") or get(e, "HGVS.c"):
            return e
    return entries[0]


def _clean_hgvs(value: str, feature: str | None, gene: str, notes: list[str], what: str) -> str | None:
    if not value:
        return None
    value = unquote(value)
    if ":" not in value and feature:
        value = f"{feature}:{value}"
    try:
        return _parse_one(value, gene).text
    except VariantError:
        notes.append(f"{what} {value!r} from the annotation is not valid HGVS and was dropped")
        return None


def _fmt_int(arr: Any, i: int, j: int = 0) -> int | None:
    try:
        v = int(arr[i][j])
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return None if v < 0 or v == _MISSING_INT else v


def _fmt_float(arr: Any, i: int, j: int = 0) -> float | None:
    try:
        v = float(arr[i][j])
    except (TypeError, ValueError, IndexError):
        return None
    return None if math.isnan(v) or v < 0 else v


@contextlib.contextmanager
def _quiet_htslib() -> Iterator[None]:
    from cyvcf2 import cyvcf2 as _c

    try:
        _c.set_htslib_log_level(0)
        yield
    finally:
        _c.set_htslib_log_level(3)


def read_vcf_calls(path: str | os.PathLike[str], sample: str | None = None) -> list[VcfCall]:
    """Every panel-gene variant in the VCF, per carrying sample (or the one ``sample``)."""
    from cyvcf2 import VCF

    p = Path(path)
    if not p.is_file():
        raise VariantError("file not found", field="vcf", value=str(p))
    calls: list[VcfCall] = []
    with _quiet_htslib():
        try:
            reader = VCF(str(p), gts012=False, lazy=True)
        except Exception as exc:
            raise VariantError(
                f"not a readable VCF ({exc.__class__.__name__}: {str(exc).strip()[:120]})",
                field="vcf", value=str(p), expected="a VCF 4.x file, plain or bgzipped",
            ) from None
        try:
            key, names = _annotation_format(reader.raw_header)
            idx = {n: i for i, n in enumerate(names)}
            gene_field = idx.get("SYMBOL", idx.get("Gene_Name"))
            if gene_field is None:
                raise VariantError(
                    f"the {key} annotation has no gene symbol field",
                    field="VCF header", value=",".join(names[:8]),
                    expected="VEP run with --symbol (SYMBOL) or SnpEff ANN (Gene_Name)",
                )
            samples = list(reader.samples)
            if sample is not None and sample not in samples:
                raise VariantError(
                    "sample not in the VCF", field="--sample", value=sample,
                    expected=f"one of {', '.join(samples) or '(no samples: a sites-only VCF)'}",
                )
            want = [samples.index(sample)] if sample is not None else list(range(len(samples)))
            rx = panel_regex()
            panel = set(panel_genes())
            n = 0
            last = "start of data"
            it = iter(reader)
            while True:
                try:
                    rec = next(it)
                except StopIteration:
                    break
                except Exception:
                    lineno, what = _diagnose(p, n)
                    where = f"line {lineno}" if lineno else f"after record {n} ({last})"
                    raise VariantError(
                        f"malformed VCF at {where}: {what}", field="vcf", value=str(p.name),
                        expected="tab-separated VCF 4.x data lines matching the header",
                    ) from None
                n += 1
                ann = rec.INFO.get(key)
                if ann is None or not isinstance(ann, str) or rx.search(ann) is None:
                    continue
                last = f"{rec.CHROM}:{rec.POS}"
                calls.extend(
                    _record_calls(rec, ann, idx, gene_field, key, panel, samples, want, p.name)
                )
        finally:
            with contextlib.suppress(Exception):
                reader.close()
    return calls


def _record_calls(
    rec: Any,
    ann: str,
    idx: dict[str, int],
    gene_field: int,
    key: str,
    panel: set[str],
    samples: list[str],
    want: list[int],
    fname: str,
) -> list[VcfCall]:
    out: list[VcfCall] = []
    entries = [e.split("|") for e in ann.split(",")]
    alts: list[str] = list(rec.ALT) or []
    ref = str(rec.REF)
    clnsig_raw = rec.INFO.get("CLNSIG")
    clnsig_raw = str(clnsig_raw) if clnsig_raw is not None else None
    origin_flag = rec.INFO.get("ORIGIN")
    somatic_flag = rec.INFO.get("SOMATIC")
    conseq_i = idx.get("Consequence", idx.get("Annotation"))
    hc_i = idx.get("HGVSc", idx.get("HGVS.c"))
    hp_i = idx.get("HGVSp", idx.get("HGVS.p"))
    exon_i = idx.get("EXON", idx.get("Rank"))
    feat_i = idx.get("Feature", idx.get("Feature_ID"))
    csig_i = idx.get("CLIN_SIG")
    fmt_ad = fmt_af = fmt_dp = None
    if samples:
        with contextlib.suppress(Exception):
            fmt_ad = rec.format("AD")
        with contextlib.suppress(Exception):
            fmt_af = rec.format("AF")
        with contextlib.suppress(Exception):
            fmt_dp = rec.format("DP")
    genotypes = rec.genotypes if samples else []
    for k, alt in enumerate(alts, start=1):
        allele_forms = {alt, _vep_trim(ref, alt)}
        mine = [e for e in entries if e and (e[0] in allele_forms or len(alts) == 1)]
        by_gene: dict[str, list[list[str]]] = {}
        for e in mine:
            if gene_field < len(e) and e[gene_field] in panel:
                by_gene.setdefault(e[gene_field], []).append(e)
        for gene, ents in by_gene.items():
            e = _pick(ents, idx, gene)
            notes: list[str] = []

            def col(i: int | None, e: list[str] = e) -> str:
                return e[i] if i is not None and i < len(e) else ""

            feature = col(feat_i) or None
            hgvs_c = _clean_hgvs(col(hc_i), feature, gene, notes, "HGVSc")
            hgvs_p = _clean_hgvs(col(hp_i), None, gene, notes, "HGVSp")
            consequence = col(conseq_i) or None
            exon = col(exon_i) or None
            classification, csig = _classification(clnsig_raw, col(csig_i), notes)
            origin = "unknown"
            if somatic_flag:
                origin = "somatic"
            elif origin_flag is not None:
                with contextlib.suppress(TypeError, ValueError):
                    o = int(origin_flag)
                    if o & 1 and not o & 2:
                        origin = "germline"
                    elif o & 2 and not o & 1:
                        origin = "somatic"
            flt = rec.FILTER or "PASS"
            if flt != "PASS":
                notes.append(f"FILTER={flt}: the caller did not pass this variant")
            base = {
                "gene": gene,
                "hgvs_c": hgvs_c,
                "hgvs_p": hgvs_p,
                "consequence": consequence,
                "classification": classification,
                "origin": origin,
                "source": f"vcf:{fname}:{rec.CHROM}:{rec.POS}",
            }
            if not samples:
                out.append(
                    VcfCall(
                        variant=Variant(**base), chrom=str(rec.CHROM), pos=int(rec.POS), ref=ref,
                        alt=alt, transcript=feature, exon=exon, filter=flt, clnsig_raw=csig,
                        notes=notes,
                    )
                )
                continue
            for si in want:
                gt = genotypes[si] if si < len(genotypes) else []
                alleles = [a for a in gt[:-1] if isinstance(a, int)] if gt else []
                carried = alleles.count(k)
                called = [a for a in alleles if a >= 0]
                vaf = None
                depth = _fmt_int(fmt_dp, si) if fmt_dp is not None else None
                if fmt_ad is not None:
                    ad = [_fmt_int(fmt_ad, si, j) for j in range(len(alts) + 1)]
                    if all(a is not None for a in ad) and sum(a or 0 for a in ad) > 0:
                        tot = sum(a or 0 for a in ad)
                        vaf = (ad[k] or 0) / tot
                        depth = depth if depth is not None else tot
                if vaf is None and fmt_af is not None:
                    vaf = _fmt_float(fmt_af, si, k - 1)
                if vaf is not None:
                    vaf = min(max(round(vaf, 4), 0.0), 1.0)
                if carried == 0 and not (vaf and vaf > 0):
                    continue  # this sample does not carry this allele
                if not called:
                    zyg = "unknown"
                elif len(alleles) == 1 and carried == 1:
                    zyg = "hemizygous"
                elif carried >= 2 and carried == len(called):
                    zyg = "homozygous"
                elif carried == 1:
                    zyg = "heterozygous"
                else:
                    zyg = "unknown"
                gt_str = ("|" if gt and gt[-1] else "/").join(
                    "." if a < 0 else str(a) for a in alleles
                ) if alleles else None
                v = Variant(**base, zygosity=zyg, vaf=vaf, sample=samples[si])
                out.append(
                    VcfCall(
                        variant=v, chrom=str(rec.CHROM), pos=int(rec.POS), ref=ref, alt=alt,
                        transcript=feature, exon=exon, depth=depth, genotype=gt_str, filter=flt,
                        clnsig_raw=csig, notes=list(notes),
                    )
                )
    return out


def _classification(clnsig: str | None, csq_clin_sig: str, notes: list[str]) -> tuple[str | None, str | None]:
    """ACMG class from ClinVar CLNSIG (or VEP CLIN_SIG); conflicting -> None with a note."""
    raw = clnsig or (csq_clin_sig or None)
    if not raw:
        return None, None
    terms = [t.strip().lower() for t in re.split(r"[&,]", raw.replace(" ", "_")) if t.strip()]
    mapped = {_CLNSIG[t] for t in terms if t in _CLNSIG}
    if len(mapped) == 1:
        return next(iter(mapped)), raw
    if {"pathogenic", "likely_pathogenic"} >= mapped and mapped:
        return "likely_pathogenic", raw
    notes.append(f"ClinVar significance {raw!r} is conflicting or not an ACMG class; left unclassified")
    return None, raw


def read_vcf(path: str | os.PathLike[str], sample: str | None = None) -> list[Variant]:
    """Panel-gene variants from an annotated VCF (one per carrying sample)."""
    return [c.variant for c in read_vcf_calls(path, sample)]
