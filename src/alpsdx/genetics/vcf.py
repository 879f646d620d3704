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
import tempfile
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

__all__ = ["VcfCall", "panel_regex", "panel_regex_bytes", "read_vcf", "read_vcf_calls"]

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
    intron: str | None = None
    depth: int | None = None
    genotype: str | None = None
    filter: str | None = None
    clnsig_raw: str | None = None
    notes: list[str] = field(default_factory=list)


def panel_regex(genes: Sequence[str] | None = None) -> re.Pattern[str]:
    """A regex that finds a panel gene symbol as a whole '|'-delimited annotation field."""
    names = sorted(genes or panel_genes(), key=len, reverse=True)
    return re.compile(r"\|(?:" + "|".join(re.escape(g) for g in names) + r")\|")


def panel_regex_bytes(genes: Sequence[str] | None = None) -> re.Pattern[bytes]:
    """``panel_regex`` over raw bytes (for the block scan of the file)."""
    return re.compile(panel_regex(genes).pattern.encode("ascii"))


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


# The plain forms VEP and SnpEff write for substitutions: valid HGVS by construction, so
# they skip the (slower) full grammar; everything else goes through the hgvs parser.
_SIMPLE_C = re.compile(r"(?:(?:N[MR]_|ENST)[0-9]+\.[0-9]+:)?c\.[*-]?[0-9]+(?:[+-][0-9]+)?[ACGT]>[ACGT]")
_AA3 = "Ala|Arg|Asn|Asp|Cys|Gln|Glu|Gly|His|Ile|Leu|Lys|Met|Phe|Pro|Ser|Thr|Trp|Tyr|Val"
_SIMPLE_P = re.compile(
    rf"(?:(?:NP_|ENSP)[0-9]+\.[0-9]+:)?p\.\(?(?:{_AA3})[1-9][0-9]*(?:{_AA3}|Ter|\*)\)?"
)


def _clean_hgvs(value: str, feature: str | None, gene: str, notes: list[str], what: str) -> str | None:
    if not value:
        return None
    value = unquote(value)
    if ":" not in value and feature:
        value = f"{feature}:{value}"
    simple = _SIMPLE_P if what == "HGVSp" else _SIMPLE_C
    if simple.fullmatch(value) and (value.count("(") == value.count(")")):
        return value.replace("*", "Ter") if what == "HGVSp" else value
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


def _header_and_samples(p: Path) -> tuple[str, list[str]]:
    """The raw header and sample names, read and validated by htslib (cyvcf2)."""
    from cyvcf2 import VCF

    with _quiet_htslib():
        try:
            reader = VCF(str(p), gts012=False, lazy=True)
        except Exception as exc:
            raise VariantError(
                f"not a readable VCF ({exc.__class__.__name__}: {str(exc).strip()[:120]})",
                field="vcf", value=str(p), expected="a VCF 4.x file, plain or bgzipped",
            ) from None
        try:
            try:
                return str(reader.raw_header), list(reader.samples)
            except Exception as exc:  # e.g. UnicodeDecodeError on a non-UTF-8 sample name
                raise VariantError(
                    f"the VCF header cannot be read ({exc.__class__.__name__}: {str(exc).strip()[:120]})",
                    field="#CHROM line (sample names)", value=str(p.name),
                    expected="a UTF-8 VCF header with tab-separated sample names",
                ) from None
        finally:
            with contextlib.suppress(Exception):
                reader.close()


def _check_header_bytes(p: Path) -> None:
    """Refuse, before htslib sees them, header bytes cyvcf2 mishandles.

    A NUL byte anywhere in the header, and non-UTF-8 bytes in the header lines the reader
    uses (#CHROM sample names, the CSQ/ANN and FORMAT definitions).
    """
    with _open_binary(p) as fh:
        lineno = 0
        while True:
            try:
                raw = fh.readline()
            except (OSError, EOFError):
                return  # reported by the data scan, with its own message
            if not raw or not raw.startswith(b"#"):
                return
            lineno += 1
            if b"\x00" in raw:
                raise VariantError(
                    "NUL byte in the VCF header", field=f"header line {lineno}",
                    value=_show(raw), expected="text without NUL bytes",
                )
            if raw.startswith((b"#CHROM", b"##INFO=<ID=CSQ,", b"##INFO=<ID=ANN,", b"##FORMAT=")):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise VariantError(
                        f"not UTF-8 (byte 0x{raw[exc.start]:02x} at "
                        f"offset {exc.start})", field=f"header line {lineno}", value=_show(raw),
                        expected="UTF-8 text (VCF 4.3, section 1.2)",
                    ) from None
            if raw.startswith(b"#CHROM"):
                return


def _show(raw: bytes, n: int = 80) -> str:
    """A short printable form of raw bytes for an error message."""
    return repr(raw[:n].rstrip(b"\r\n"))[2:-1] + ("..." if len(raw) > n else "")


# Header FORMAT definitions: ID -> (Number, Type).
_FORMAT_DEF = re.compile(r"^##FORMAT=<ID=([^,>]+),Number=([^,>]+),Type=([^,>]+)", re.M)
_INFO_DEF = re.compile(r"^##INFO=<ID=([^,>]+),Number=([^,>]+),Type=(Integer|Float)", re.M)
_REF = re.compile(r"[ACGTNacgtn]+")
_ALT = re.compile(r"[ACGTNacgtn*.]+|<[!-~]+>|[!-~]*[\[\]][!-~]*")
_KEY = re.compile(r"[A-Za-z_][0-9A-Za-z_.]*")
# no leading phase indicator: htslib (cyvcf2) fails to parse one and still hands over the
# record, whose FORMAT values then segfault when read (atheris, docs/reliability.md #19)
_GT = re.compile(r"(?:\.|[0-9]+)(?:[|/](?:\.|[0-9]+))*")
_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(
    r"[-+]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[Nn][Aa][Nn]|[Ii][Nn][Ff](?:inity)?)"
)
_COLS = ("CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT")


def _format_defs(raw_header: str) -> dict[str, tuple[str, str]]:
    return {m.group(1): (m.group(2), m.group(3)) for m in _FORMAT_DEF.finditer(raw_header)}


def _numeric_info_defs(raw_header: str) -> dict[str, str]:
    """INFO keys declared Integer or Float -> their Type."""
    return {m.group(1): m.group(3) for m in _INFO_DEF.finditer(raw_header)}


def _bad_number(typ: str, item: str) -> bool:
    if item == ".":
        return False
    if typ == "Integer":
        return not (_INT.fullmatch(item) and -(2**31) + 8 <= int(item) < 2**31)
    return not _FLOAT.fullmatch(item)


def _col_name(i: int, samples: Sequence[str]) -> str:
    if i < len(_COLS):
        return _COLS[i]
    k = i - len(_COLS)
    return f"sample {samples[k]!r}" if k < len(samples) else f"column {i + 1}"


def _check_record(
    line: bytes,
    lineno: int,
    ncols: int,
    fdefs: dict[str, tuple[str, str]],
    samples: Sequence[str],
    idefs: dict[str, str] | None = None,
) -> None:
    """Validate one data line before cyvcf2 parses it (it crashes or raises untyped on these).

    NUL bytes, non-UTF-8 bytes, a REF/ALT that is not an allele, FORMAT keys that are not
    keys, sample columns with more values than FORMAT keys, and Integer/Float/GT values (and
    Number=1/A/R counts) that do not match their header definition raise ``VariantError``.
    """
    exp = "a VCF 4.x data line whose values match the header definitions"

    def bad(column: str, value: str, what: str, expected: str = exp) -> VariantError:
        return VariantError(
            f"malformed VCF at line {lineno}: {what}" if column == "line"
            else f"malformed VCF value: {what}", field=f"line {lineno} {column}",
            value=value[:80], expected=expected,
        )

    raw_cols = line.split(b"\t")
    for i, rc in enumerate(raw_cols):
        if b"\x00" in rc:
            raise bad(_col_name(i, samples), _show(rc), "NUL byte", "text without NUL bytes")
        try:
            rc.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise bad(
                _col_name(i, samples), _show(rc), f"byte 0x{rc[exc.start]:02x} is not UTF-8",
                "UTF-8 text (VCF 4.3, section 1.2)",
            ) from None
    what = _bad_line(line, ncols)
    if what:
        raise bad("line", _show(line, 120), what, "tab-separated VCF 4.x data lines matching the header")
    cols = line.decode("utf-8").split("\t")
    if not cols[0]:
        raise bad("CHROM", "", "empty", "a contig name")
    if not _REF.fullmatch(cols[3]):
        raise bad("REF", cols[3], "not a reference allele", "bases A, C, G, T, N")
    alts = cols[4].split(",")
    for a in alts:
        if not _ALT.fullmatch(a):
            raise bad("ALT", cols[4], f"{a!r} is not an allele",
                      "comma-separated bases, '*', '.', <SYMBOLIC> or a breakend")
    for entry in cols[7].split(";") if idefs else ():
        k, eq, v = entry.partition("=")
        typ = idefs.get(k) if idefs else None
        if typ and eq:
            for it in v.split(","):
                if _bad_number(typ, it):
                    raise bad("INFO", entry, f"{k} {v!r} is not a list of {typ.lower()}s",
                              f"{k}: {'32-bit integers' if typ == 'Integer' else 'numbers'} or '.' "
                              f"(header Type={typ})")
    if ncols <= 9:
        return
    keys = cols[8].split(":")
    for key in keys:
        if not _KEY.fullmatch(key):
            raise bad("FORMAT", cols[8], f"{key!r} is not a FORMAT key",
                      "':'-separated keys such as GT:AD:DP")
    if len(set(keys)) != len(keys):
        raise bad("FORMAT", cols[8], "a key is repeated", "each FORMAT key once")
    if "GT" in keys and keys[0] != "GT":
        raise bad("FORMAT", cols[8], "GT is not the first key", "GT first when present (VCF 4.x 1.6.2)")
    nalt = len(alts)
    for si, value in enumerate(cols[9:]):
        column = _col_name(9 + si, samples)
        vals = value.split(":")
        if len(vals) > len(keys):
            raise bad(column, value, f"{len(vals)} ':'-separated values but FORMAT has {len(keys)} keys",
                      f"at most {len(keys)} values ({cols[8]})")
        for key, v in zip(keys, vals, strict=False):
            if v in (".", "") and key != "GT":
                continue  # missing
            if key == "GT":
                if not _GT.fullmatch(v):
                    raise bad(column, value, f"GT {v!r} is not a genotype",
                              "a genotype such as 0/1, 1|0 or ./. (no leading phase indicator)")
                # an allele index past the ALT alleles (or past htslib's integers) made htslib
                # drop the record's FORMAT and cyvcf2 segfault reading it (docs/reliability.md #19)
                if any(a != "." and (len(a) > 9 or int(a) > nalt) for a in re.split(r"[|/]", v)):
                    raise bad(column, value, f"GT {v!r} names an allele the record does not have",
                              f"allele indexes 0 (REF) to {nalt} (the ALT alleles: {cols[4]})")
                continue
            number, typ = fdefs.get(key, (".", "String"))
            items = v.split(",")
            if typ == "Integer" and any(_bad_number(typ, it) for it in items):
                raise bad(column, value, f"{key} {v!r} is not a list of integers",
                          f"{key}: 32-bit integers or '.' (header Type=Integer)")
            if typ == "Float" and any(_bad_number(typ, it) for it in items):
                raise bad(column, value, f"{key} {v!r} is not a list of numbers",
                          f"{key}: numbers or '.' (header Type=Float)")
            want = {"A": nalt, "R": nalt + 1}.get(number)
            if want is None and number.isdigit():
                want = int(number)
            if want is not None and want > 0 and len(items) != want:
                raise bad(column, value, f"{key} has {len(items)} values",
                          f"{want} value(s) for {key} (header Number={number}, {nalt} ALT allele(s))")


def _bad_line(line: bytes, ncols: int) -> str | None:
    """What is structurally wrong with one data line (None when nothing is)."""
    cols = line.decode("utf-8", "replace").rstrip("\r").split("\t")
    if len(cols) < 8:
        return f"{len(cols)} tab-separated columns; a VCF data line needs at least 8"
    if len(cols) != ncols:
        return f"{len(cols)} columns but the #CHROM header has {ncols}"
    if not cols[1].isdigit() or int(cols[1]) < 1:
        return f"POS {cols[1]!r} is not a positive integer"
    return None


def _scan_panel_lines(
    p: Path, ncols: int, rx: re.Pattern[bytes], chunk_size: int = 1 << 23
) -> tuple[list[int], list[bytes], int]:
    """Data lines whose text names a panel gene: (line numbers, lines, records scanned).

    One C-level regex search per 8 MiB block finds candidate lines; each block is also
    checked for its column count (tab count == lines x (columns - 1)), and a block that
    fails is walked line by line to name the first bad line.
    """
    linenos: list[int] = []
    lines: list[bytes] = []
    records = 0
    lineno = 0
    tabs_per_line = ncols - 1
    with _open_binary(p) as fh:
        # header lines
        while True:
            raw = fh.readline()
            if not raw:
                return linenos, lines, records
            lineno += 1
            if raw.startswith(b"#CHROM"):
                break
        tail = b""
        while True:
            chunk = fh.read(chunk_size)
            if not chunk:
                block, tail = tail, b""
                if block and not block.endswith(b"\n"):
                    block += b"\n"
            else:
                block = tail + chunk
                cut = block.rfind(b"\n") + 1
                block, tail = block[:cut], block[cut:]
            if block:
                n = block.count(b"\n")
                if block.count(b"\t") != n * tabs_per_line:  # a blank or short line fails this too
                    _raise_first_bad(block, lineno, ncols, p.name)
                prev_end = -1
                counted_to, lines_before = 0, 0  # newlines in block[:counted_to]
                for m in rx.finditer(block):
                    s = block.rfind(b"\n", 0, m.start()) + 1
                    if s <= prev_end:
                        continue  # same line as the previous match
                    e = block.find(b"\n", m.end())
                    lines_before += block.count(b"\n", counted_to, s)
                    counted_to = s
                    linenos.append(lineno + lines_before + 1)
                    lines.append(block[s:e].rstrip(b"\r"))
                    prev_end = e
                lineno += n
                records += n
            if not chunk:
                break
    return linenos, lines, records


def _raise_first_bad(block: bytes, lineno0: int, ncols: int, name: str) -> None:
    for i, line in enumerate(block.split(b"\n")[:-1], start=1):
        what = "empty line" if not line.strip() else _bad_line(line, ncols)
        if what:
            raise VariantError(
                f"malformed VCF at line {lineno0 + i}: {what}", field="vcf", value=name,
                expected="tab-separated VCF 4.x data lines matching the header",
            )


def _open_binary(p: Path) -> Any:
    with open(p, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(p, "rb")
    return open(p, "rb")


def _is_bcf(p: Path) -> bool:
    """True for BCF (binary; its records cannot be scanned as text)."""
    with _open_binary(p) as fh:
        try:
            return bytes(fh.read(3)) == b"BCF"
        except (OSError, EOFError):
            return False


def _read_bcf(
    p: Path, key: str, idx: dict[str, int], gene_field: int, samples: list[str], want: list[int]
) -> list[VcfCall]:
    """BCF: every record through htslib, panel records kept (no text pre-filter)."""
    from cyvcf2 import VCF

    rx = panel_regex()
    panel = set(panel_genes())
    calls: list[VcfCall] = []
    n = 0
    with _quiet_htslib():
        reader = VCF(str(p), gts012=False, lazy=True)
        try:
            it = iter(reader)
            while True:
                try:
                    rec = next(it)
                except StopIteration:
                    break
                except Exception:
                    raise VariantError(
                        f"malformed BCF after record {n}", field="vcf", value=p.name,
                        expected="a BCF file htslib can read to the end",
                    ) from None
                n += 1
                data = _record_data(rec, key, bool(samples), f"BCF record {n}")
                if data is not None and rx.search(data.ann):
                    calls.extend(_record_calls(data, idx, gene_field, key, panel, samples, want, p.name))
        finally:
            with contextlib.suppress(Exception):
                reader.close()
    return calls


def read_vcf_calls(path: str | os.PathLike[str], sample: str | None = None) -> list[VcfCall]:
    """Every panel-gene variant in the VCF, per carrying sample (or the one ``sample``).

    htslib (cyvcf2) reads and validates the header, then parses every record whose
    annotation names a panel gene; the other records are only checked for their column
    count (a fast byte scan), so a malformed value in a non-panel record goes unnoticed.
    """
    from cyvcf2 import VCF

    p = Path(path)
    if not p.is_file():
        raise VariantError("file not found", field="vcf", value=str(p))
    _check_header_bytes(p)
    raw_header, samples = _header_and_samples(p)
    key, names = _annotation_format(raw_header)
    idx = {n: i for i, n in enumerate(names)}
    gene_field = idx.get("SYMBOL", idx.get("Gene_Name"))
    if gene_field is None:
        raise VariantError(
            f"the {key} annotation has no gene symbol field",
            field="VCF header", value=",".join(names[:8]),
            expected="VEP run with --symbol (SYMBOL) or SnpEff ANN (Gene_Name)",
        )
    if sample is not None and sample not in samples:
        raise VariantError(
            "sample not in the VCF", field="--sample", value=sample,
            expected=f"one of {', '.join(samples) or '(no samples: a sites-only VCF)'}",
        )
    want = [samples.index(sample)] if sample is not None else list(range(len(samples)))
    chrom_line = next(
        (ln for ln in raw_header.splitlines() if ln.startswith("#CHROM")), "#CHROM"
    )
    ncols = len(chrom_line.split("\t"))
    if _is_bcf(p):
        return _read_bcf(p, key, idx, gene_field, samples, want)
    try:
        linenos, lines, _ = _scan_panel_lines(p, ncols, panel_regex_bytes())
    except (OSError, EOFError) as exc:
        raise VariantError(
            f"the file cannot be read to the end ({exc.__class__.__name__}: {exc})",
            field="vcf", value=p.name, expected="a complete VCF, plain or bgzipped",
        ) from None
    if not lines:
        return []
    fdefs, idefs = _format_defs(raw_header), _numeric_info_defs(raw_header)
    for lineno, line in zip(linenos, lines, strict=True):
        _check_record(line, lineno, ncols, fdefs, samples, idefs)
    header_text = raw_header if raw_header.endswith("\n") else raw_header + "\n"
    calls: list[VcfCall] = []
    panel = set(panel_genes())
    with tempfile.TemporaryDirectory(prefix="alpsdx-vcf-") as td:
        tmp = Path(td) / "panel.vcf"
        with open(tmp, "wb") as out:
            out.write(header_text.encode("utf-8"))
            out.write(b"\n".join(lines) + b"\n")
        with _quiet_htslib():
            reader = VCF(str(tmp), gts012=False, lazy=True)
            try:
                it = iter(reader)
                k = 0
                while True:
                    try:
                        rec = next(it)
                    except StopIteration:
                        break
                    except Exception:
                        at = linenos[k] if k < len(linenos) else None
                        what = _bad_line(lines[k], ncols) if k < len(lines) else None
                        raise VariantError(
                            f"malformed VCF at line {at}: "
                            + (what or "htslib could not parse this line (check INFO/FORMAT values "
                               "against the header)"),
                            field="vcf", value=p.name,
                            expected="tab-separated VCF 4.x data lines matching the header",
                        ) from None
                    k += 1
                    cols = lines[k - 1].split(b"\t", 9)
                    keys = cols[8].decode("utf-8").split(":") if len(cols) > 8 else []
                    data = _record_data(rec, key, bool(samples), f"line {linenos[k - 1]}", keys)
                    if data is None:
                        continue
                    calls.extend(_record_calls(data, idx, gene_field, key, panel, samples, want, p.name))
            finally:
                with contextlib.suppress(Exception):
                    reader.close()
    return calls


@dataclass
class _Rec:
    """What the reader uses of one cyvcf2 record, read out under one exception guard."""

    ann: str
    chrom: str
    pos: int
    ref: str
    alts: list[str]
    filter: str | None
    clnsig: Any
    origin: Any
    somatic: Any
    fmt_ad: Any
    fmt_af: Any
    fmt_dp: Any
    genotypes: list[Any]


def _record_data(
    rec: Any, key: str, has_samples: bool, where: str, fmt_keys: list[str] | None = None
) -> _Rec | None:
    """The record's fields (None when it has no string annotation); every cyvcf2 failure
    (UnicodeDecodeError, 'error parsing genotypes', ...) becomes a ``VariantError``.

    ``fmt_keys`` are the record's FORMAT keys from its text line (cyvcf2's ``Variant.FORMAT``
    segfaults in lazy mode after htslib meets an undeclared key); None for BCF records,
    whose values are then read where present.
    """
    try:
        ann = rec.INFO.get(key)
        if ann is None or not isinstance(ann, str):
            return None
        fmt: dict[str, Any] = {}
        genotypes: list[Any] = []
        if has_samples:
            for f in ("AD", "AF", "DP"):
                if fmt_keys is None:
                    with contextlib.suppress(KeyError):
                        fmt[f] = rec.format(f)
                elif f in fmt_keys:
                    fmt[f] = rec.format(f)
            if fmt_keys is None or "GT" in fmt_keys:
                genotypes = rec.genotypes
        return _Rec(
            ann=ann, chrom=str(rec.CHROM), pos=int(rec.POS), ref=str(rec.REF), alts=list(rec.ALT or []),
            filter=rec.FILTER, clnsig=rec.INFO.get("CLNSIG"), origin=rec.INFO.get("ORIGIN"),
            somatic=rec.INFO.get("SOMATIC"), fmt_ad=fmt.get("AD"), fmt_af=fmt.get("AF"),
            fmt_dp=fmt.get("DP"), genotypes=genotypes,
        )
    except Exception as exc:
        raise VariantError(
            f"malformed VCF at {where}: htslib/cyvcf2 could not read the record "
            f"({exc.__class__.__name__}: {str(exc).strip()[:120]})",
            field=f"VCF {where}", value=str(exc).strip()[:80] or exc.__class__.__name__,
            expected="a VCF 4.x record whose values match the header definitions",
        ) from None


def _record_calls(
    rec: _Rec,
    idx: dict[str, int],
    gene_field: int,
    key: str,
    panel: set[str],
    samples: list[str],
    want: list[int],
    fname: str,
) -> list[VcfCall]:
    out: list[VcfCall] = []
    entries = [e.split("|") for e in rec.ann.split(",")]
    alts = rec.alts
    ref = rec.ref
    clnsig_raw = str(rec.clnsig) if rec.clnsig is not None else None
    origin_flag = rec.origin
    somatic_flag = rec.somatic
    conseq_i = idx.get("Consequence", idx.get("Annotation"))
    hc_i = idx.get("HGVSc", idx.get("HGVS.c"))
    hp_i = idx.get("HGVSp", idx.get("HGVS.p"))
    exon_i = idx.get("EXON", idx.get("Rank"))
    intron_i = idx.get("INTRON")
    feat_i = idx.get("Feature", idx.get("Feature_ID"))
    csig_i = idx.get("CLIN_SIG")
    fmt_ad, fmt_af, fmt_dp = rec.fmt_ad, rec.fmt_af, rec.fmt_dp
    genotypes = rec.genotypes
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
            intron = col(intron_i) or None
            if key == "ANN" and exon and consequence and (
                "intron" in consequence or "splice_acceptor" in consequence
                or "splice_donor" in consequence
            ) and not any(t in consequence for t in ("missense", "stop_gained", "synonymous")):
                exon, intron = None, exon  # SnpEff Rank is the intron's rank for intronic changes
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
            flt = rec.filter or "PASS"
            if flt != "PASS":
                notes.append(f"FILTER={flt}: the caller did not pass this variant")
            base = {
                "gene": gene,
                "hgvs_c": hgvs_c,
                "hgvs_p": hgvs_p,
                "consequence": consequence,
                "classification": classification,
                "origin": origin,
                "source": f"vcf:{fname}:{rec.chrom}:{rec.pos}",
            }
            if not samples:
                out.append(
                    VcfCall(
                        variant=Variant(**base), chrom=rec.chrom, pos=rec.pos, ref=ref,
                        alt=alt, transcript=feature, exon=exon, intron=intron, filter=flt, clnsig_raw=csig,
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
                        variant=v, chrom=rec.chrom, pos=rec.pos, ref=ref, alt=alt,
                        transcript=feature, exon=exon, intron=intron, depth=depth, genotype=gt_str,
                        filter=flt,
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
