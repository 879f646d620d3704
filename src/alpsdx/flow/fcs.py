"""Read Flow Cytometry Standard (FCS 2.0, 3.0, 3.1, 3.2) files into numpy arrays.

A reader of our own, vectorised with numpy, checked event by event against flowio (the
reference reader FlowKit uses). It covers $DATATYPE I/F/D/A, FCS 3.2 per-channel
$PnDATATYPE, every $BYTEORD (little, big and mixed permutations such as 3,4,1,2), integer
widths from $PnB (8 to 64 bits, including 24-bit) masked to the next power of two at or
above $PnR, escaped (doubled) delimiters, supplemental TEXT, HEADER offsets of 0 for
large files, and $NEXTDATA chains of several data sets.

`FCSData.events` holds exactly what FlowKit calls a Sample's *raw* events
(``flowio.FlowData.as_array(preprocess=True)``), in float64, stored column-major (Fortran
order) so that each channel is one contiguous array for compensation and gating:

* integer channels are masked to ``next_pow2($PnR) - 1`` when that is narrower than $PnB;
* a channel with $PnE = f1,f2 and f1 > 0 becomes ``10 ** (f1 * x / $PnR) * f2`` (f2 = 0
  is read as 1, as the standard asks);
* a channel with $PnG = g (g not 0 or 1) is divided by g, except the time channel
  ($PnN "Time", any case), whose gain is ignored and which is multiplied by $TIMESTEP.

Anything malformed raises `alpsdx.errors.FCSError` naming the keyword and the values.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import mmap
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from alpsdx.errors import FCSError

__all__ = ["Channel", "FCSData", "read_fcs", "read_fcs_bytes"]

_HEADER_BYTES = 58
_VERSIONS = ("FCS2.0", "FCS3.0", "FCS3.1", "FCS3.2")
_MAX_DATASETS = 10_000


@dataclass(frozen=True)
class Channel:
    """One parameter ($Pn...) of an FCS data set."""

    index: int  # 1-based $Pn index
    pnn: str  # $PnN short name, e.g. "FL1-A"
    pns: str | None  # $PnS stain/marker, e.g. "CD3 APC-H7"
    bits: int | None  # $PnB (None for ASCII "*" fields)
    range: float  # $PnR
    gain: float  # $PnG as written in the file (1.0 when absent)
    log_decades: float  # $PnE f1 (0 = linear)
    log_offset: float  # $PnE f2 (set to 1.0 when f1 > 0 and f2 = 0, per the standard)
    datatype: str = "F"  # I, F, D or A for this channel ($PnDATATYPE in FCS 3.2)


@dataclass(frozen=True, eq=False)
class FCSData:
    """One data set of an FCS file: TEXT keywords, channels and scaled events (float64)."""

    path: str
    version: str  # "FCS2.0" | "FCS3.0" | "FCS3.1" | "FCS3.2"
    text: Mapping[str, str]  # TEXT (+ supplemental TEXT); keys upper-case with '$' kept
    channels: tuple[Channel, ...]
    events: np.ndarray  # float64 (n_events, n_channels), column-major; $PnE, $PnG,
    # $TIMESTEP applied (float32 from read_fcs(keep_float32=True): see time_step_pending)
    dataset_index: int
    n_datasets: int
    _pnn_lookup: Mapping[str, int] = field(default_factory=dict, repr=False)
    # keep_float32 reads leave a $TIMESTEP unapplied rather than round the scaled Time values
    # to float32: multiply the Time column by this (in float64) for the scaled values
    time_step_pending: float = 1.0

    @property
    def n_events(self) -> int:
        """Number of events ($TOT)."""
        return int(self.events.shape[0])

    @property
    def pnn(self) -> tuple[str, ...]:
        """$PnN names in column order."""
        return tuple(c.pnn for c in self.channels)

    @property
    def pns(self) -> tuple[str | None, ...]:
        """$PnS names in column order (None where absent)."""
        return tuple(c.pns for c in self.channels)

    def channel_index(self, pnn: str) -> int:
        """0-based column of the channel whose $PnN is `pnn`; FCSError if absent."""
        lookup = self._pnn_lookup or {c.pnn: i for i, c in enumerate(self.channels)}
        try:
            return lookup[pnn]
        except KeyError:
            raise FCSError(
                "no such channel",
                field="$PnN",
                value=pnn,
                expected="one of " + ", ".join(c.pnn for c in self.channels),
            ) from None

    @property
    def date(self) -> _dt.date | None:
        """Acquisition date from $DATE (dd-mmm-yyyy, dd-mmm-yy, yyyy-mm-dd); None if absent."""
        return parse_fcs_date(self.text.get("$DATE"))


# ---------------------------------------------------------------------------- dates

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}


def parse_fcs_date(value: str | None) -> _dt.date | None:
    """Parse an FCS $DATE value; None when absent or not in an unambiguous format.

    FCS 3.x writes dd-mmm-yyyy, FCS 2.0 dd-mmm-yy (years 00-68 read as 20xx, 69-99 as 19xx,
    Python's %y convention); some writers use ISO yyyy-mm-dd or a full month name.
    """
    if value is None:
        return None
    s = value.strip()
    m = re.fullmatch(r"(\d{1,2})[-/ ]([A-Za-z]{3,9})[-/ ](\d{2}|\d{4})", s)
    try:
        if m:
            month = _MONTHS.get(m.group(2)[:3].lower())
            if month is None:
                return None
            year = int(m.group(3))
            if len(m.group(3)) == 2:
                year += 2000 if year < 69 else 1900
            return _dt.date(year, month, int(m.group(1)))
        m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", s)
        if m:
            return _dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None
    return None


# ---------------------------------------------------------------------------- public API


def read_fcs(
    path: str | Path,
    dataset: int = 0,
    *,
    ignore_offset_error: bool = False,
    ignore_offset_discrepancy: bool = False,
    preprocess: bool = True,
    keep_float32: bool = False,
) -> FCSData:
    """Read data set `dataset` (0-based, default the first) of the FCS file at `path`.

    `ignore_offset_error` accepts a DATA end offset one byte too far (a common writer
    bug); `ignore_offset_discrepancy` uses the TEXT offsets when HEADER and TEXT disagree.
    Both default to refusing, as flowio does. `preprocess=False` leaves the stored values
    unscaled (no $PnE/$PnG/$TIMESTEP; integer masking still applies), like flowio's
    ``as_array(preprocess=False)``. `keep_float32=True` keeps 32-bit float DATA ($DATATYPE F)
    as float32 events when no $PnE or $PnG scales it: the same values exactly, in half the
    memory (otherwise events are float64 as always). A $TIMESTEP is then left unapplied
    rather than rounded: ``time_step_pending`` holds it, for the caller to multiply the Time
    column by in float64.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < _HEADER_BYTES:
                data: bytes | mmap.mmap = fh.read()
            else:
                # memory-mapped: DATA is decoded straight from the page cache, no copy
                data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:
        raise FCSError(
            f"cannot read file: {getattr(exc, 'strerror', None) or exc}", field="path",
            value=str(p),
        ) from None
    try:
        return read_fcs_bytes(
            data,
            name=str(p),
            dataset=dataset,
            ignore_offset_error=ignore_offset_error,
            ignore_offset_discrepancy=ignore_offset_discrepancy,
            preprocess=preprocess,
            keep_float32=keep_float32,
        )
    finally:
        if isinstance(data, mmap.mmap):
            with contextlib.suppress(BufferError):  # a view still alive: the GC closes it
                data.close()


def read_fcs_bytes(
    data: bytes | bytearray | memoryview,
    name: str = "<bytes>",
    dataset: int = 0,
    *,
    ignore_offset_error: bool = False,
    ignore_offset_discrepancy: bool = False,
    preprocess: bool = True,
    keep_float32: bool = False,
) -> FCSData:
    """Read data set `dataset` of an FCS file held in memory (see `read_fcs`)."""
    buf = memoryview(data).cast("B") if not isinstance(data, bytes) else data
    if isinstance(dataset, bool) or not isinstance(dataset, int) or dataset < 0:
        raise FCSError("data set index must be a non-negative integer", field="dataset",
                       value=dataset)
    bases, texts, headers = _walk_datasets(buf)
    n = len(bases)
    if dataset >= n:
        raise FCSError(
            f"file holds {n} data set(s)", field="dataset", value=dataset,
            expected=f"an index from 0 to {n - 1}",
        )
    base, text, header = bases[dataset], texts[dataset], headers[dataset]
    text = _merge_supplemental(buf, base, text)
    channels = _channels(text)
    start, stop = _data_offsets(
        buf, base, header, text, ignore_offset_discrepancy=ignore_offset_discrepancy
    )
    step: float | None = 1.0
    if keep_float32 and preprocess:
        step = None if _scales_values(channels) else _pending_time_step(text, channels)
    events = _decode(
        buf, base, start, stop, text, channels, ignore_offset_error=ignore_offset_error,
        keep_float32=keep_float32 and step is not None,
    )
    pending = 1.0
    if events.dtype == np.float32:
        pending = step if step is not None else 1.0  # nothing else to scale
    elif preprocess:
        _scale(events, text, channels)
    return FCSData(
        path=name,
        version=header.version,
        text=MappingProxyType(text),
        channels=tuple(channels),
        events=events,
        dataset_index=dataset,
        n_datasets=n,
        _pnn_lookup=MappingProxyType({c.pnn: i for i, c in enumerate(channels)}),
        time_step_pending=pending,
    )


# ---------------------------------------------------------------------------- HEADER


@dataclass(frozen=True)
class _Header:
    version: str
    text_start: int
    text_stop: int
    data_start: int
    data_stop: int


def _header_int(raw: bytes, what: str, *, blank_ok: bool) -> int:
    s = raw.decode("latin-1").strip()
    if s == "" and blank_ok:
        return 0
    if not (s.isascii() and s.isdigit()):  # str.isdigit() is True for "²", int() is not
        raise FCSError("HEADER offset is not a number", field=f"HEADER {what}", value=s,
                       expected="an ASCII integer in 8 columns")
    return int(s)


def _parse_header(buf: bytes, base: int) -> _Header:
    if len(buf) - base < _HEADER_BYTES:
        raise FCSError(
            "file too short for an FCS HEADER", field="HEADER", value=len(buf) - base,
            expected=f"at least {_HEADER_BYTES} bytes",
        )
    raw = bytes(buf[base : base + _HEADER_BYTES])
    version = raw[:6].decode("latin-1")
    if version not in _VERSIONS:
        raise FCSError("not a supported FCS version", field="HEADER version", value=version,
                       expected=" or ".join(_VERSIONS))
    ts = _header_int(raw[10:18], "TEXT start", blank_ok=False)
    te = _header_int(raw[18:26], "TEXT end", blank_ok=False)
    ds = _header_int(raw[26:34], "DATA start", blank_ok=True)
    de = _header_int(raw[34:42], "DATA end", blank_ok=True)
    return _Header(version, ts, te, ds, de)


# ---------------------------------------------------------------------------- TEXT


def _decode_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _parse_pairs(s: str, where: str) -> dict[str, str]:
    """Split a TEXT segment into keyword/value pairs.

    The standard reads a doubled delimiter as a literal delimiter inside a keyword or
    value. Some writers (CellQuest among them) instead write empty values, which also
    show up as doubled delimiters; when the standard reading leaves a keyword without a
    value, the segment is re-read with doubled delimiters as empty values.
    """
    if not s:
        raise FCSError("segment is empty", field=where, value="",
                       expected="a delimiter then keyword/value pairs")
    d = s[0]
    if d in "\x00\r\n" or ord(d) > 126 or d.isalnum():
        raise FCSError("bad delimiter", field=where, value=d,
                       expected="an ASCII character 1-126 that is not a letter or digit")
    tokens = _tokens_escaped(s, d)
    if len(tokens) % 2:
        alt = _tokens_empty_values(s, d)
        if len(alt) % 2 == 0:
            tokens = alt
        else:
            raise FCSError(
                "keyword without a value (mismatched delimiters)", field=where,
                value=tokens[-1][:40], expected=f"keyword{d}value{d} pairs",
            )
    out: dict[str, str] = {}
    for k, v in zip(tokens[::2], tokens[1::2], strict=True):
        out[k.strip().upper()] = v
    return out


_PAD = " \x00\r\n\t"


def _tokens_escaped(s: str, d: str) -> list[str]:
    """Tokens of a TEXT segment reading a doubled delimiter as a literal one."""
    tokens: list[str] = []
    cur: list[str] = []
    i, n = 1, len(s)
    while i < n:
        j = s.find(d, i)
        if j < 0:
            cur.append(s[i:])
            break
        if j + 1 < n and s[j + 1] == d:
            cur.append(s[i:j] + d)
            i = j + 2
            continue
        cur.append(s[i:j])
        tokens.append("".join(cur))
        cur = []
        i = j + 1
    tail = "".join(cur)
    if tail.strip(_PAD):
        tokens.append(tail)  # an unterminated last value: accept it as flowio does
    if len(tokens) % 2 and not tokens[-1].strip(_PAD):
        tokens.pop()
    return tokens


def _tokens_empty_values(s: str, d: str) -> list[str]:
    """Tokens of a TEXT segment reading a doubled delimiter as an empty value."""
    parts = s[1:].split(d)
    if parts and not parts[-1].strip(_PAD):
        parts.pop()  # what follows the final delimiter (padding)
    return parts


def _read_text(buf: bytes, base: int, start: int, stop: int, where: str) -> dict[str, str]:
    a, b = base + start, base + stop + 1
    if start <= 0 or stop < start or b > len(buf):
        raise FCSError(
            "segment offsets outside the file", field=where, value=(start, stop),
            expected=f"0 < start <= end < {len(buf) - base}",
        )
    return _parse_pairs(_decode_text(bytes(buf[a:b])), where)


def _kw_int(text: Mapping[str, str], key: str, default: int | None = None) -> int:
    v = text.get(key)
    if v is None or (v.strip() == "" and default is not None):
        if default is None:
            raise FCSError("required keyword missing", field=key, expected="an integer")
        return default
    s = v.strip()
    try:
        out = int(s)
    except ValueError:
        try:
            f = float(s)
        except ValueError:
            f = math.nan
        if not math.isfinite(f) or f != int(f):
            raise FCSError("keyword is not an integer", field=key, value=v) from None
        out = int(f)
    return out


def _kw_float(text: Mapping[str, str], key: str, default: float | None = None) -> float:
    v = text.get(key)
    if v is None or (v.strip() == "" and default is not None):
        if default is None:
            raise FCSError("required keyword missing", field=key, expected="a number")
        return default
    try:
        f = float(v.strip())
    except ValueError:
        raise FCSError("keyword is not a number", field=key, value=v) from None
    if not math.isfinite(f):
        raise FCSError("keyword is not a finite number", field=key, value=v)
    return f


def _walk_datasets(buf: bytes) -> tuple[list[int], list[dict[str, str]], list[_Header]]:
    """Follow the $NEXTDATA chain; each offset is relative to the current data set."""
    bases: list[int] = []
    texts: list[dict[str, str]] = []
    headers: list[_Header] = []
    base = 0
    seen: set[int] = set()
    while True:
        header = _parse_header(buf, base)
        text = _read_text(buf, base, header.text_start, header.text_stop, "TEXT")
        bases.append(base)
        texts.append(text)
        headers.append(header)
        seen.add(base)
        nxt = _kw_int(text, "$NEXTDATA", default=0)
        if nxt == 0:
            return bases, texts, headers
        new = base + nxt
        if nxt < 0 or new in seen or new + _HEADER_BYTES > len(buf) or len(bases) >= _MAX_DATASETS:
            raise FCSError(
                "next data set offset is invalid", field="$NEXTDATA", value=nxt,
                expected=f"0 or a positive offset to a later HEADER within {len(buf)} bytes",
            )
        base = new


def _merge_supplemental(buf: bytes, base: int, text: dict[str, str]) -> dict[str, str]:
    """Add supplemental TEXT ($BEGINSTEXT/$ENDSTEXT); primary TEXT wins on duplicates."""
    s = _kw_int(text, "$BEGINSTEXT", default=0)
    e = _kw_int(text, "$ENDSTEXT", default=0)
    if s == 0 and e == 0:
        return text
    supp = _read_text(buf, base, s, e, "$BEGINSTEXT/$ENDSTEXT")
    merged = dict(supp)
    merged.update(text)
    return merged


# ---------------------------------------------------------------------------- channels


def _channels(text: Mapping[str, str]) -> list[Channel]:
    par = _kw_int(text, "$PAR")
    if par < 1:
        raise FCSError("no parameters", field="$PAR", value=par, expected="at least 1")
    if par > 100_000:
        raise FCSError("implausible parameter count", field="$PAR", value=par,
                       expected="at most 100000")
    base_type = text.get("$DATATYPE", "").strip().upper()
    if base_type not in ("I", "F", "D", "A"):
        raise FCSError("unsupported data type", field="$DATATYPE", value=text.get("$DATATYPE"),
                       expected="I, F, D or A")
    out: list[Channel] = []
    for i in range(1, par + 1):
        pnn = text.get(f"$P{i}N")
        if pnn is None:
            raise FCSError("required keyword missing", field=f"$P{i}N",
                           expected=f"a name for each of the {par} parameters ($PAR)")
        dtype = text.get(f"$P{i}DATATYPE", base_type).strip().upper()
        if dtype not in ("I", "F", "D", "A"):
            raise FCSError("unsupported data type", field=f"$P{i}DATATYPE", value=dtype,
                           expected="I, F or D")
        braw = text.get(f"$P{i}B")
        if braw is None:
            raise FCSError("required keyword missing", field=f"$P{i}B",
                           expected="bits per value")
        bits: int | None
        if braw.strip() == "*":
            if dtype != "A":
                raise FCSError("'*' width only allowed for ASCII data", field=f"$P{i}B",
                               value=braw, expected="a bit count")
            bits = None
        else:
            bits = _kw_int(text, f"$P{i}B")
            if bits <= 0:
                raise FCSError("bit width must be positive", field=f"$P{i}B", value=braw)
        rng = _kw_float(text, f"$P{i}R")
        gain = _kw_float(text, f"$P{i}G", default=1.0)
        pne = text.get(f"$P{i}E")
        decades, log0 = 0.0, 0.0
        if pne is not None and pne.strip():
            parts = pne.split(",")
            try:
                if len(parts) != 2:
                    raise ValueError
                decades, log0 = float(parts[0]), float(parts[1])
            except ValueError:
                raise FCSError("amplification is not two numbers", field=f"$P{i}E",
                               value=pne, expected="f1,f2 such as 0,0 or 4,1") from None
            if not (math.isfinite(decades) and math.isfinite(log0)):
                raise FCSError("amplification is not finite", field=f"$P{i}E", value=pne)
            if log0 == 0 and decades != 0:
                log0 = 1.0  # the standard: f2 = 0 with f1 > 0 is read as 1
            if decades > 0 and rng <= 0:
                raise FCSError("log amplification needs a positive range",
                               field=f"$P{i}R", value=text.get(f"$P{i}R"),
                               expected="> 0")
        pns = text.get(f"$P{i}S")
        out.append(Channel(i, pnn, pns, bits, rng, gain, decades, log0, dtype))
    return out


# ---------------------------------------------------------------------------- DATA


def _data_offsets(
    buf: bytes, base: int, header: _Header, text: Mapping[str, str], *,
    ignore_offset_discrepancy: bool,
) -> tuple[int, int]:
    hs, he = header.data_start, header.data_stop
    has_text = "$BEGINDATA" in text and "$ENDDATA" in text
    if header.version == "FCS2.0" or not has_text:
        if hs == 0 and he == 0 and has_text:
            start, stop = _kw_int(text, "$BEGINDATA"), _kw_int(text, "$ENDDATA")
        else:
            start, stop = hs, he
    else:
        start, stop = _kw_int(text, "$BEGINDATA"), _kw_int(text, "$ENDDATA")
        large = hs == 0 and he == 0  # HEADER holds 0s when DATA lies past 99,999,999
        if not large and not ignore_offset_discrepancy:
            if start != hs:
                raise FCSError(
                    "DATA start differs between HEADER and TEXT", field="$BEGINDATA",
                    value=start, expected=f"the HEADER value {hs}",
                )
            if stop != he:
                raise FCSError(
                    "DATA end differs between HEADER and TEXT", field="$ENDDATA",
                    value=stop, expected=f"the HEADER value {he}",
                )
    if start < 0 or stop < 0:
        raise FCSError("negative DATA offset", field="$BEGINDATA/$ENDDATA",
                       value=(start, stop))
    # one byte past the end is the classic exclusive-end writer bug: let the size check
    # below name it ("off by one") and `ignore_offset_error` accept it
    if base + stop > len(buf) and not (start == 0 and stop == 0):
        raise FCSError(
            "DATA segment runs past the end of the file", field="$ENDDATA", value=stop,
            expected=f"< {len(buf) - base} (bytes in the data set)",
        )
    return start, stop


def _byteorder(text: Mapping[str, str]) -> tuple[str, list[int] | None]:
    """'<' or '>' for plain orders; otherwise '|' and the 0-based significance of each byte."""
    raw = text.get("$BYTEORD")
    if raw is None:
        raise FCSError("required keyword missing", field="$BYTEORD", expected="e.g. 1,2,3,4")
    try:
        order = [int(x) for x in raw.strip().split(",")]
    except ValueError:
        raise FCSError("byte order is not a list of integers", field="$BYTEORD",
                       value=raw, expected="e.g. 1,2,3,4 or 4,3,2,1") from None
    if sorted(order) != list(range(1, len(order) + 1)) or len(order) > 8:
        raise FCSError("byte order is not a permutation of 1..n", field="$BYTEORD",
                       value=raw, expected="e.g. 1,2,3,4 or 4,3,2,1")
    if order == sorted(order):
        return "<", None
    if order == sorted(order, reverse=True):
        return ">", None
    return "|", [k - 1 for k in order]


_INT_CODES = {1: "u1", 2: "u2", 4: "u4", 8: "u8"}


def _col_width(c: Channel) -> int:
    if c.datatype == "F":
        return 4
    if c.datatype == "D":
        return 8
    assert c.bits is not None
    if c.datatype == "A":
        return c.bits  # characters
    if c.bits % 8 or c.bits > 64:
        raise FCSError(
            "integer width is not a whole number of bytes up to 64 bits",
            field=f"$P{c.index}B", value=c.bits, expected="8, 16, 24, 32, 48 or 64",
        )
    return c.bits // 8


def _decode(
    buf: bytes, base: int, start: int, stop: int, text: Mapping[str, str],
    channels: list[Channel], *, ignore_offset_error: bool, keep_float32: bool = False,
) -> np.ndarray:
    tot = _kw_int(text, "$TOT")
    par = len(channels)
    if tot < 0:
        raise FCSError("negative event count", field="$TOT", value=tot)
    mode = text.get("$MODE", "L").strip().upper()
    if mode != "L":
        raise FCSError("only list mode data is supported", field="$MODE", value=mode,
                       expected="L")
    nbytes = 0 if (start == 0 and stop == 0) else stop - start + 1
    if any(c.datatype == "A" for c in channels):
        if any(c.datatype != "A" for c in channels):
            raise FCSError("ASCII mixed with binary channels", field="$PnDATATYPE",
                           expected="one data type family")
        if base + start + nbytes > len(buf):
            raise FCSError(
                "DATA segment runs past the end of the file", field="$ENDDATA", value=stop,
                expected=f"< {len(buf) - base} (bytes in the data set)",
            )
        return _decode_ascii(buf, base + start, nbytes, tot, channels)
    widths = [_col_width(c) for c in channels]
    row = sum(widths)
    expected = tot * row
    if nbytes != expected:
        if nbytes == expected + 1 and ignore_offset_error:
            nbytes = expected
        else:
            hint = (" (DATA end is off by one; --ignore-offset-error accepts it)"
                    if nbytes == expected + 1 else "")
            raise FCSError(
                f"DATA segment size does not match $TOT x $PAR{hint}",
                field="$TOT/$PAR",
                value=f"$TOT={tot} $PAR={par} row={row} bytes, DATA bytes "
                f"{start}..{stop} = {nbytes}",
                expected=f"{expected} bytes",
            )
    if base + start + nbytes > len(buf):
        raise FCSError(
            "DATA segment runs past the end of the file", field="$ENDDATA", value=stop,
            expected=f"< {len(buf) - base} (bytes in the data set)",
        )
    if tot == 0:
        return np.zeros((0, par), dtype=np.float64)
    order, perm = _byteorder(text)
    off = base + start
    kinds = {(c.datatype, w) for c, w in zip(channels, widths, strict=True)}
    if perm is None and len(kinds) == 1:
        kind, w = next(iter(kinds))
        code = {"F": "f4", "D": "f8"}.get(kind) or _INT_CODES.get(w)
        if code is not None:
            arr = np.frombuffer(buf, dtype=np.dtype(order + code), count=tot * par, offset=off)
            arr = arr.reshape(tot, par)
            if keep_float32 and kind == "F":
                return _to_columns(arr, np.float32)
            out = _to_f64_columns(arr)
            if kind == "I":
                _mask_int(out, arr, channels, list(range(par)))
            return out
    # Mixed widths/types or a permuted byte order: a structured record of raw bytes.
    rec_dtype = np.dtype([(f"c{i}", "u1", (w,)) for i, w in enumerate(widths)])
    rec = np.frombuffer(buf, dtype=rec_dtype, count=tot, offset=off)
    out = np.empty((tot, par), dtype=np.float64, order="F")
    for i, (c, w) in enumerate(zip(channels, widths, strict=True)):
        b = rec[f"c{i}"]  # (tot, w) uint8 as stored
        vals = _column_from_bytes(b, c, w, order, perm)
        out[:, i] = vals
        if c.datatype == "I":
            _mask_int(out, vals.reshape(-1, 1), [c], [i], col_of_arr=[0])
    return out


def _to_f64_columns(arr: np.ndarray, block: int = 4096) -> np.ndarray:
    """float64 column-major copy of a row-major (events x channels) array, converted in
    blocks of rows that stay in cache (a plain transposing copy is several times slower)."""
    return _to_columns(arr, np.float64, block)


def _to_columns(arr: np.ndarray, dtype: type[np.floating], block: int = 4096) -> np.ndarray:
    """Column-major copy of a row-major array in ``dtype``, in cache-sized blocks of rows."""
    out = np.empty(arr.shape, dtype=dtype, order="F")
    for r in range(0, arr.shape[0], block):
        out[r : r + block] = arr[r : r + block]
    return out


def _column_from_bytes(
    b: np.ndarray, c: Channel, w: int, order: str, perm: list[int] | None
) -> np.ndarray:
    """Values of one channel from its (n, w) stored bytes."""
    if perm is not None:
        if w == 1:
            pass
        elif len(perm) == w:
            le = np.empty_like(b)
            le[:, perm] = b  # file byte k has significance perm[k]
            b = le
        else:
            raise FCSError(
                f"mixed byte order of {len(perm)} bytes cannot apply to {w}-byte values",
                field="$BYTEORD", value=",".join(str(k + 1) for k in perm),
                expected=f"an order of {w} bytes, or plain little/big endian",
            )
        order = "<"
    elif order == ">":
        b = b[:, ::-1]
        order = "<"
    # b now little-endian bytes
    if c.datatype in ("F", "D"):
        code = "<f4" if c.datatype == "F" else "<f8"
        return np.ascontiguousarray(b).view(code).reshape(-1)
    size = 1 if w == 1 else 2 if w == 2 else 4 if w <= 4 else 8
    if size != w:
        padded = np.zeros((b.shape[0], size), dtype=np.uint8)
        padded[:, :w] = b
        b = padded
    return np.ascontiguousarray(b).view(f"<u{size}").reshape(-1)


def _mask_int(
    out: np.ndarray, arr: np.ndarray, channels: list[Channel], cols: list[int],
    col_of_arr: list[int] | None = None,
) -> None:
    """Mask integer channels to next_pow2($PnR) - 1 where that is narrower than $PnB."""
    for k, (c, col) in enumerate(zip(channels, cols, strict=True)):
        if c.bits is None or c.bits >= 64:
            continue
        rng = math.ceil(c.range) if c.range > 0 else 0
        p2 = 1 if rng <= 1 else 1 << (rng - 1).bit_length()
        if p2 < (1 << c.bits):
            src = arr[:, col if col_of_arr is None else col_of_arr[k]]
            out[:, col] = src & np.asarray(p2 - 1, dtype=src.dtype)


def _parse_free_ascii(raw: bytes) -> np.ndarray:
    """Whitespace-separated numbers (stripped text, commas already spaces) as float64; a value
    that is not a number is an FCSError naming it."""
    if not raw:  # (numpy reads a blank string as [-1.0])
        return np.zeros(0, dtype=np.float64)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)  # older numpy: a warning
            return np.fromstring(raw, dtype=np.float64, sep=" ")
    except (ValueError, DeprecationWarning):
        bad = next((t for t in raw.split() if not _is_number(t)), raw[:20])
        raise FCSError("ASCII DATA value is not a number", field="DATA",
                       value=bad[:40].decode("latin-1"), expected="a decimal number") from None


def _is_number(token: bytes) -> bool:
    try:
        np.array([token]).astype(np.float64)
    except ValueError:
        return False
    return True


def _decode_ascii(
    buf: bytes, off: int, nbytes: int, tot: int, channels: list[Channel]
) -> np.ndarray:
    par = len(channels)
    raw = bytes(buf[off : off + nbytes])
    try:
        if all(c.bits is None for c in channels):
            # values separated by whitespace and/or commas, parsed straight into float64 by
            # numpy (no Python object per value: peak memory a few times the text)
            if b"," in raw:
                raw = raw.replace(b",", b" ")
            raw = raw.strip()
            vals = _parse_free_ascii(raw)
            if vals.size != tot * par:
                raise FCSError(
                    "ASCII DATA value count does not match $TOT x $PAR", field="$TOT/$PAR",
                    value=f"{vals.size} values", expected=f"{tot * par} values",
                )
        elif any(c.bits is None for c in channels):
            raise FCSError("ASCII widths mix '*' and fixed", field="$PnB",
                           expected="all '*' or all fixed widths")
        else:
            row = sum(int(c.bits or 0) for c in channels)
            if nbytes != tot * row:
                raise FCSError(
                    "DATA segment size does not match $TOT x $PAR", field="$TOT/$PAR",
                    value=f"{nbytes} bytes", expected=f"{tot * row} bytes",
                )
            dt = np.dtype([(f"c{i}", f"S{c.bits}") for i, c in enumerate(channels)])
            rec = np.frombuffer(raw, dtype=dt, count=tot)
            vals = np.empty((tot, par), dtype=np.float64)
            for i in range(par):
                vals[:, i] = rec[f"c{i}"].astype(np.float64)  # numpy parses each field
    except ValueError as exc:
        raise FCSError("ASCII DATA value is not a number", field="DATA",
                       value=str(exc)[:60]) from None
    return vals.reshape(tot, par)


# ---------------------------------------------------------------------------- scaling


def _scales_values(channels: list[Channel]) -> bool:
    """Whether :func:`_scale` changes values other than Time's: a $PnE log amplification or
    a $PnG gain other than 0 or 1 (on a channel other than Time)."""
    time_idx = _time_index(channels)
    return any(c.log_decades > 0 or (i != time_idx and c.gain not in (0.0, 1.0))
               for i, c in enumerate(channels))


def _time_index(channels: list[Channel]) -> int | None:
    time_idx = None
    for i, c in enumerate(channels):
        if c.pnn.lower() == "time":
            time_idx = i
    return time_idx


def _pending_time_step(text: Mapping[str, str], channels: list[Channel]) -> float | None:
    """The $TIMESTEP :func:`_scale` would apply to the Time channel (1.0 when none), or None
    when it is malformed (the float64 path then reports it, in its usual order)."""
    if _time_index(channels) is None or "$TIMESTEP" not in text:
        return 1.0
    if text["$TIMESTEP"].strip() == "":
        return 1.0
    try:
        return _kw_float(text, "$TIMESTEP")
    except FCSError:
        return None


def _scale(events: np.ndarray, text: Mapping[str, str], channels: list[Channel]) -> None:
    """Apply $PnE, $PnG and $TIMESTEP in place, exactly as flowio's preprocessing does."""
    time_idx = None
    for i, c in enumerate(channels):
        if c.pnn.lower() == "time":
            time_idx = i
    if time_idx is not None and "$TIMESTEP" in text:
        raw = text["$TIMESTEP"]
        step = 1.0 if raw.strip() == "" else _kw_float(text, "$TIMESTEP")
        if step != 1.0:
            events[:, time_idx] *= step
    for i, c in enumerate(channels):
        if c.log_decades > 0:
            col = events[:, i]
            with np.errstate(over="ignore", invalid="ignore"):
                scaled = 10.0 ** (c.log_decades * col / c.range) * c.log_offset
            # An absurd $PnE (e.g. 1e308,0) overflows to inf: refuse it rather than return
            # infinite events that every later step would have to second-guess.
            if not np.all(np.isfinite(scaled) | ~np.isfinite(col)):
                raise FCSError("log amplification overflows to infinite values", field=f"$P{i + 1}E",
                               value=f"{c.log_decades:g},{c.log_offset:g}",
                               expected="decades and offset giving finite values over $PnR")
            events[:, i] = scaled
        if i != time_idx and c.gain not in (0.0, 1.0):
            events[:, i] /= c.gain
