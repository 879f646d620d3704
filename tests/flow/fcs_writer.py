"""A small FCS writer for tests: files of every flavour the reader must handle.

Independent of alpsdx's reader (encodes with ``int.to_bytes``/``struct``, not numpy
views) so round trips test something. Not part of the package.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Spec:
    """What to write. `events` are the stored values (already masked/encoded as wanted)."""

    events: np.ndarray  # (n_events, n_channels) stored values
    names: Sequence[str]
    version: str = "3.1"  # "2.0" | "3.0" | "3.1" | "3.2"
    datatype: str = "F"  # I | F | D | A
    bits: Sequence[int | str] | None = None  # $PnB per channel ("*" for free ASCII)
    channel_types: Sequence[str] | None = None  # FCS 3.2 $PnDATATYPE per channel
    byteord: str = "1,2,3,4"
    ranges: Sequence[float | str] | None = None
    pne: Sequence[str] | None = None
    png: Sequence[str] | None = None
    pns: Sequence[str | None] | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    supplemental: Mapping[str, str] = field(default_factory=dict)
    delimiter: str = "/"
    header_zero_data: bool = False  # write 0s for DATA in HEADER (large-file style)
    data_end_off_by_one: bool = False  # the classic writer bug: end offset exclusive
    text_data_offsets: bool = True  # write $BEGINDATA/$ENDDATA into TEXT
    text_start: int = 256


def _esc(s: str, d: str) -> str:
    return s.replace(d, d + d)


def _text_segment(pairs: Mapping[str, str], d: str) -> bytes:
    out = d + "".join(_esc(k, d) + d + _esc(v, d) + d for k, v in pairs.items())
    return out.encode("utf-8")


def _encode_value(v: float, kind: str, width: int, order: list[int]) -> bytes:
    """One value as stored: `order` is $BYTEORD (1 = least significant byte first)."""
    if kind == "I":
        le = int(v).to_bytes(width, "little", signed=False)
    elif kind == "F":
        le = struct.pack("<f", v)
    else:
        le = struct.pack("<d", v)
    n = len(le)
    if n == 1:
        return le
    if len(order) == n:
        return bytes(le[k - 1] for k in order)
    if order == sorted(order):
        return le
    return le[::-1]


def _data_segment(spec: Spec, kinds: list[str], widths: list[int]) -> bytes:
    order = [int(x) for x in spec.byteord.split(",")]
    ev = np.asarray(spec.events)
    if spec.datatype == "A":
        if spec.bits is not None and all(str(b) == "*" for b in spec.bits):
            return (" ".join(repr(float(x)) if x != int(x) else str(int(x))
                             for x in ev.ravel()) + "\n").encode()
        parts = []
        for row in ev:
            for x, w in zip(row, widths, strict=True):
                parts.append(str(int(x)).rjust(w).encode())
        return b"".join(parts)
    out = bytearray()
    for row in ev:
        for x, k, w in zip(row.tolist(), kinds, widths, strict=True):
            out += _encode_value(x, k, w, order)
    return bytes(out)


def build(spec: Spec, nextdata: int = 0, nextdata_width: int = 0) -> bytes:
    """Bytes of one data set (HEADER, TEXT, supplemental TEXT, DATA)."""
    par = len(spec.names)
    ev = np.asarray(spec.events)
    kinds = list(spec.channel_types) if spec.channel_types else [spec.datatype] * par
    bits: list[int | str]
    if spec.bits is not None:
        bits = list(spec.bits)
    else:
        bits = [{"I": 16, "F": 32, "D": 64, "A": 8}[k] for k in kinds]
    widths = [
        0 if str(b) == "*" else (int(b) if k == "A" else int(b) // 8)
        for b, k in zip(bits, kinds, strict=True)
    ]
    data = _data_segment(spec, kinds, widths)

    pairs: dict[str, str] = {
        "$BYTEORD": spec.byteord,
        "$DATATYPE": spec.datatype,
        "$MODE": "L",
        "$NEXTDATA": str(nextdata).zfill(nextdata_width) if nextdata_width else str(nextdata),
        "$PAR": str(par),
        "$TOT": str(ev.shape[0]),
    }
    if spec.version == "3.2":
        pairs.pop("$MODE")
    for i, name in enumerate(spec.names, start=1):
        pairs[f"$P{i}N"] = name
        pairs[f"$P{i}B"] = str(bits[i - 1])
        rng = spec.ranges[i - 1] if spec.ranges is not None else 262144
        pairs[f"$P{i}R"] = str(rng)
        pairs[f"$P{i}E"] = spec.pne[i - 1] if spec.pne is not None else "0,0"
        if spec.png is not None:
            pairs[f"$P{i}G"] = spec.png[i - 1]
        if spec.pns is not None and spec.pns[i - 1] is not None:
            pairs[f"$P{i}S"] = str(spec.pns[i - 1])
        if spec.channel_types is not None:
            pairs[f"$P{i}DATATYPE"] = spec.channel_types[i - 1]
    pairs.update(spec.extra)

    d = spec.delimiter
    stext = _text_segment(spec.supplemental, d) if spec.supplemental else b""
    # Offsets depend on the TEXT length, which depends on the offsets: iterate to a fixpoint.
    text_start = spec.text_start
    begin_data = stext_start = 0
    for _ in range(20):
        full = dict(pairs)
        if spec.version != "2.0":
            full["$BEGINANALYSIS"] = "0"
            full["$ENDANALYSIS"] = "0"
            full["$BEGINSTEXT"] = str(stext_start) if stext else "0"
            full["$ENDSTEXT"] = str(stext_start + len(stext) - 1) if stext else "0"
        if (spec.text_data_offsets and spec.version != "2.0") or spec.header_zero_data:
            full["$BEGINDATA"] = str(begin_data)
            full["$ENDDATA"] = str(begin_data + len(data) - 1 + spec.data_end_off_by_one)
        text = _text_segment(full, d)
        new_stext = text_start + len(text)
        new_begin = new_stext + len(stext)
        if new_stext == stext_start and new_begin == begin_data:
            break
        stext_start, begin_data = new_stext, new_begin
    end_data = begin_data + len(data) - 1 + spec.data_end_off_by_one
    if not data:
        begin_data = end_data = 0

    def col(v: int) -> str:
        return str(v).rjust(8)

    hd = col(0) + col(0) if spec.header_zero_data else col(begin_data) + col(end_data)
    header = f"FCS{spec.version}    " + col(text_start) + col(text_start + len(text) - 1) + hd
    header += col(0) + col(0)
    hb = header.encode("ascii").ljust(text_start, b" ")
    return hb + text + stext + data


def build_multi(specs: Sequence[Spec]) -> bytes:
    """Several data sets chained by $NEXTDATA (offset from each set's first byte)."""
    # Fixed-width NEXTDATA keeps each set's length independent of the value written.
    width = 12
    lengths = [len(build(s, nextdata=0, nextdata_width=width)) for s in specs]
    out = b""
    for i, s in enumerate(specs):
        nxt = lengths[i] if i < len(specs) - 1 else 0
        out += build(s, nextdata=nxt, nextdata_width=width)
    return out
