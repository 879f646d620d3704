"""Uploaded files (case JSON/YAML, FCS, VCF): validate, keep (SHA-256, atomic write), derive.

Shared by the pages and the API so both apply the same rules.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from alpsdx.errors import InputError
from alpsdx.model import Case, parse_case_text
from alpsdx.store import Actor, Registry
from alpsdx.web import seams

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
KINDS = ("case", "fcs", "vcf")


def _check_size(data: bytes) -> None:
    if not data:
        raise InputError("the file is empty", field="file")
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError("file too large", field="file", expected=f"at most {MAX_UPLOAD_BYTES // 2**20} MB")


def parse_case_upload(data: bytes, filename: str | None) -> Case:
    """A case file (JSON or YAML by extension, else sniffed), validated like the CLI does."""
    _check_size(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("file is not UTF-8 text", field="file") from None
    name = (filename or "").lower()
    fmt: Any = "json" if name.endswith(".json") else "yaml" if name.endswith((".yaml", ".yml")) else "auto"
    return parse_case_text(text, fmt=fmt, source=Path(filename or "upload").name)


def process(reg: Registry, pid: int, actor: Actor, kind: str, name: str, data: bytes) -> str:
    """Store one upload for patient ``pid`` and what it yields; returns a one-line summary."""
    if kind not in KINDS:
        raise InputError("unknown upload kind", field="kind", value=kind, expected=" | ".join(KINDS))
    _check_size(data)
    if kind == "case":
        case = parse_case_upload(data, name)
        current = reg.load_case(pid, actor)
        if case.id != current.id:
            raise InputError("the case file is for another patient id", field="id", value=case.id,
                             expected="this patient's id (upload it from the patient list to create a patient)")
        reg.save_case(case, actor, trigger="upload_case")
        reg.add_file(pid, "case", name, data, actor)
        return "Case file merged"
    _digest, rel = reg.write_blob(data)
    path = reg.blob_path(rel)
    if kind == "fcs":
        summary, observations, png = seams.analyse_fcs(path, Path(name).name)
        if png:
            summary["gate_plot"] = reg.write_blob(png)[1]
        reg.add_file(pid, "fcs", name, data, actor, result=summary, observations=observations)
        if not observations:
            return "FCS analysed: no TCRab+ DNT figure (see the QC notes); nothing added to the record"
        return f"FCS analysed: {len(observations)} DNT values added"
    with tempfile.TemporaryDirectory() as tmp:
        # The reader picks the parser by suffix (.vcf / .vcf.gz).
        suffix = ".vcf.gz" if name.lower().endswith(".gz") else ".vcf"
        copy = Path(tmp) / f"upload{suffix}"
        copy.write_bytes(data)
        variants = seams.read_vcf(copy)
    reg.add_file(pid, "vcf", name, data, actor, result={"variants": len(variants)}, variants=variants)
    return f"VCF read: {len(variants)} variants added"
