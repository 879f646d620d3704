"""Benchmark: panel filtering of a large annotated VCF vs a plain cyvcf2 pass.

Writes a synthetic 1,000,000-record VEP-annotated VCF (one sample; every 1000th record
annotated to a panel gene, the rest to other genes), then times in the same run:

  baseline  a plain cyvcf2 pass: iterate every record and read its POS
  alpsdx    alpsdx.genetics.read_vcf_calls(path): panel genes only, per-sample calls

Run by hand: ``.venv/bin/python benchmarks/bench_vcf.py [--records N] [--repeat R] [--bgzip]``.
Target: ratio <= 1.5. The last line is ``RESULT ratio_to_cyvcf2=...``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

CSQ_FORMAT = (
    "Allele|Consequence|IMPACT|SYMBOL|Gene|Feature_type|Feature|BIOTYPE|EXON|INTRON|"
    "HGVSc|HGVSp|MANE_SELECT|CANONICAL|CLIN_SIG"
)
OTHER_GENES = ("BRCA2", "TTN", "MUC16", "OBSCN", "SYNE1", "NEB", "DMD", "RYR1", "APOB", "LRP1B")


def write_vcf(path: Path, n: int, panel_every: int = 1000) -> int:
    """Write ``n`` records; returns how many are annotated to FAS."""
    header = "\n".join([
        "##fileformat=VCFv4.2",
        "##contig=<ID=chr1,length=248956422>",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">',
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">',
        '##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations from '
        f'Ensembl VEP. Format: {CSQ_FORMAT}">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tproband",
    ]) + "\n"
    def fas(k: int) -> str:  # a different FAS missense change each time (no caching helps)
        c = 700 + 3 * (k % 100)
        return ("G|missense_variant|MODERATE|FAS|ENSG00000026103|Transcript|NM_000043.6|"
                f"protein_coding|9/9||NM_000043.6:c.{c}A>G|NP_000034.1:p.Asp{(c + 2) // 3}Gly|"
                "NM_000043.6|YES|")
    hits = 0
    with open(path, "w", encoding="ascii") as fh:
        fh.write(header)
        chunk: list[str] = []
        for i in range(n):
            pos = 10_000 + i * 50
            if i % panel_every == 0:
                csq = fas(hits)
                hits += 1
            else:
                g = OTHER_GENES[i % len(OTHER_GENES)]
                csq = (f"G|missense_variant|MODERATE|{g}|ENSG0|Transcript|NM_{i % 9999:06d}.1|"
                       f"protein_coding|3/10||NM_{i % 9999:06d}.1:c.{100 + i % 900}A>G|"
                       f"NP_{i % 9999:06d}.1:p.Asp{34 + i % 300}Gly|||")
            chunk.append(f"chr1\t{pos}\t.\tA\tG\t50\tPASS\tCSQ={csq}\tGT:AD:DP\t0/1:20,18:38\n")
            if len(chunk) >= 20_000:
                fh.write("".join(chunk))
                chunk.clear()
        fh.write("".join(chunk))
    return hits


def plain_cyvcf2(path: Path) -> int:
    from cyvcf2 import VCF

    n = 0
    reader = VCF(str(path), lazy=True)
    for rec in reader:
        n += rec.POS > 0
    reader.close()
    return n


def alpsdx_panel(path: Path) -> int:
    from alpsdx.genetics import read_vcf_calls

    return len(read_vcf_calls(path))


def best_of(fn: Callable[[Path], int], path: Path, repeat: int) -> tuple[float, int]:
    times: list[float] = []
    out = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(path)
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bgzip", action="store_true", help="bgzip the file first (both readers read .vcf.gz)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="alpsdx-bench-vcf-") as tmp:
        path = Path(tmp) / "annotated.vcf"
        t0 = time.perf_counter()
        hits = write_vcf(path, args.records)
        print(f"wrote {args.records:,} records ({path.stat().st_size / 1e6:.0f} MB, {hits:,} FAS) "
              f"in {time.perf_counter() - t0:.1f} s")
        if args.bgzip:
            import pysam

            gz = path.with_suffix(".vcf.gz")
            pysam.tabix_compress(str(path), str(gz), force=True)
            path.unlink()
            path = gz
            print(f"bgzipped to {path.stat().st_size / 1e6:.0f} MB")
        base_t, n = best_of(plain_cyvcf2, path, args.repeat)
        ours_t, calls = best_of(alpsdx_panel, path, args.repeat)
        if n != args.records or calls != hits:
            print(f"MISMATCH: cyvcf2 read {n} records, alpsdx kept {calls} calls (expected {hits})")
            return 1
        ratio = ours_t / base_t
        print(f"baseline plain cyvcf2 pass : {base_t:.2f} s ({args.records / base_t:,.0f} records/s)")
        print(f"alpsdx panel filter        : {ours_t:.2f} s ({args.records / ours_t:,.0f} records/s), "
              f"{calls:,} panel calls")
        print(f"ratio alpsdx / cyvcf2      : {ratio:.2f} (target <= 1.5)")
        print(f"RESULT ratio_to_cyvcf2={ratio:.2f} records={args.records} panel_calls={calls} "
              f"bgzip={args.bgzip} cyvcf2_s={base_t:.2f} alpsdx_s={ours_t:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
