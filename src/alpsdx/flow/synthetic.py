"""Synthetic FCS files with a known DNT fraction: the ground truth the gating is tested on.

A lysed whole-blood sample is simulated on a BD-like cytometer: lymphocyte, monocyte and
granulocyte scatter clouds, debris near the origin, doublets (two cells summed, with a
lower FSC-H/FSC-A ratio), a Time channel, and seven markers (TCRab, CD4, CD8, CD3, B220,
CD45, CD19). True fluorescence is mixed by a spillover matrix (written as $SPILLOVER) and
given detector noise, so compensation must be undone before gating. The number of TCRab+
CD4- CD8- cells is exact: ``round(dnt_pct_lymphocytes/100 * lymphocytes)``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["SyntheticSpec", "SyntheticTruth", "default_spill", "make_sample", "write_fcs",
           "write_synthetic"]

# detector -> (stain as written in $PnS, marker)
FLUOR_CHANNELS: tuple[tuple[str, str, str], ...] = (
    ("FITC-A", "TCR a/b FITC", "TCRab"),
    ("PE-A", "CD4 PE", "CD4"),
    ("PerCP-Cy5-5-A", "CD8 PerCP-Cy5.5", "CD8"),
    ("APC-A", "CD3 APC", "CD3"),
    ("PE-Cy7-A", "CD45R/B220 PE-Cy7", "B220"),
    ("V500-A", "CD45 V500", "CD45"),
    ("BV421-A", "CD19 BV421", "CD19"),
)
RANGE = 262144.0


def default_spill() -> np.ndarray:
    """A plausible 7-colour spillover matrix (row = fluorochrome, column = detector)."""
    s = np.eye(7)
    s[0, 1] = 0.22  # FITC -> PE
    s[0, 2] = 0.03
    s[1, 2] = 0.12  # PE -> PerCP-Cy5.5
    s[1, 4] = 0.02
    s[2, 3] = 0.08  # PerCP-Cy5.5 -> APC
    s[2, 4] = 0.10
    s[3, 4] = 0.03  # APC -> PE-Cy7
    s[1, 0] = 0.01
    s[4, 2] = 0.02
    s[5, 6] = 0.05  # V500 <-> BV421
    s[6, 5] = 0.15
    return s


@dataclass(frozen=True)
class SyntheticSpec:
    """What to simulate; fractions are of all singlet events."""

    n_events: int = 100_000
    dnt_pct_lymphocytes: float = 1.5
    seed: int = 0
    lymph: float = 0.45
    mono: float = 0.08
    gran: float = 0.30
    debris: float = 0.12
    doublet_fraction: float = 0.04  # of all events
    gd_t_pct: float = 4.0  # TCRgd T cells, % of lymphocytes (mostly CD4- CD8-)
    t_pct: float = 70.0  # all CD3+ T cells, % of lymphocytes
    b_pct: float = 12.0
    tcrab: bool = True
    b220: bool = True
    spill: bool = True
    date: dt.date = dt.date(2025, 5, 20)
    time_gap: bool = False
    extra_channels: int = 0  # extra unstained channels (to reach a wider panel)
    pns_overrides: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SyntheticTruth:
    n_events: int
    n_lymphocytes: int
    n_t: int  # CD3+ lymphocytes
    n_tcrab: int  # TCRab+ CD3+ lymphocytes
    n_dnt: int  # TCRab+ CD4- CD8-
    n_dn_cd3: int  # CD3+ CD4- CD8- (incl. gd T cells)

    @property
    def dnt_pct_lymphocytes(self) -> float:
        return 100.0 * self.n_dnt / self.n_lymphocytes

    @property
    def dnt_pct_cd3(self) -> float:
        return 100.0 * self.n_dnt / self.n_t

    @property
    def dnt_pct_tcrab(self) -> float:
        return 100.0 * self.n_dnt / self.n_tcrab


def _pos(rng: np.random.Generator, n: int, median: float, sd_log10: float = 0.15) -> np.ndarray:
    return median * 10 ** rng.normal(0, sd_log10, n)


def _neg(rng: np.random.Generator, n: int, auto: float = 30.0, sd: float = 60.0) -> np.ndarray:
    return rng.normal(auto, sd, n)


def make_sample(spec: SyntheticSpec) -> tuple[np.ndarray, list[str], list[str], np.ndarray | None,
                                             SyntheticTruth]:
    """Events (n, p) as float32, $PnN, $PnS, spillover matrix (or None) and the truth."""
    rng = np.random.default_rng(spec.seed)
    n_doub = round(spec.doublet_fraction * spec.n_events)
    n_single = spec.n_events - n_doub
    tot = spec.lymph + spec.mono + spec.gran + spec.debris
    nL = round(n_single * spec.lymph / tot)
    nM = round(n_single * spec.mono / tot)
    nG = round(n_single * spec.gran / tot)
    nD = n_single - nL - nM - nG
    markers = [m for _, _, m in FLUOR_CHANNELS]
    k = len(markers)
    mi = {m: i for i, m in enumerate(markers)}
    true = np.empty((n_single, k))
    # scatter (FSC-A, SSC-A) per population; FSC-H/FSC-A ~ 0.85 for singlets
    fsc = np.concatenate([
        rng.normal(48000, 5500, nL), rng.normal(82000, 8000, nM), rng.normal(95000, 10000, nG),
        np.abs(rng.normal(0, 9000, nD)) + 3000,
    ])
    ssc = np.concatenate([
        rng.gamma(16, 9000 / 16, nL), rng.gamma(25, 32000 / 25, nM), rng.gamma(30, 120000 / 30, nG),
        np.abs(rng.normal(0, 6000, nD)) + 500,
    ])
    # markers: everything negative first, then the positive populations
    for m in markers:
        true[:, mi[m]] = _neg(rng, n_single)
    true[nL + nM:nL + nM + nG] += rng.normal(150, 60, (nG, k))  # granulocyte autofluorescence
    # lymphocyte subsets with exact counts
    n_dnt = round(spec.dnt_pct_lymphocytes / 100.0 * nL)
    n_gd = round(spec.gd_t_pct / 100.0 * nL)
    n_t = round(spec.t_pct / 100.0 * nL)
    n_b = round(spec.b_pct / 100.0 * nL)
    n_ab_other = n_t - n_gd - n_dnt
    if n_ab_other < 0:
        raise ValueError("dnt_pct_lymphocytes + gd_t_pct exceeds t_pct")
    n_dp = round(0.01 * n_ab_other)
    n_cd8 = round((n_ab_other - n_dp) / 3)
    n_cd4 = n_ab_other - n_dp - n_cd8
    n_gd_cd8 = round(0.3 * n_gd)
    n_nk = nL - n_t - n_b
    order = rng.permutation(nL)  # subsets are independent of scatter
    cuts = np.cumsum([0, n_dnt, n_cd4, n_cd8, n_dp, n_gd - n_gd_cd8, n_gd_cd8, n_b, n_nk])
    grp = [order[cuts[i]:cuts[i + 1]] for i in range(len(cuts) - 1)]
    dnt, cd4, cd8, dp, gd_dn, gd_8, bc, _nk = grp
    t_all = np.concatenate([dnt, cd4, cd8, dp, gd_dn, gd_8])
    ab = np.concatenate([dnt, cd4, cd8, dp])
    L = true[:nL]
    L[t_all, mi["CD3"]] = _pos(rng, t_all.size, 9000)
    L[ab, mi["TCRab"]] = _pos(rng, ab.size, 7000)
    L[np.concatenate([cd4, dp]), mi["CD4"]] = _pos(rng, cd4.size + dp.size, 12000)
    L[np.concatenate([cd8, dp]), mi["CD8"]] = _pos(rng, cd8.size + dp.size, 25000)
    L[gd_8, mi["CD8"]] = _pos(rng, gd_8.size, 6000)
    L[bc, mi["CD19"]] = _pos(rng, bc.size, 6000)
    L[bc, mi["B220"]] = _pos(rng, bc.size, 15000)
    b220_dnt = dnt[: round(0.8 * dnt.size)]  # ALPS DNT are mostly B220+
    L[b220_dnt, mi["B220"]] = _pos(rng, b220_dnt.size, 4000)
    L[:, mi["CD45"]] = _pos(rng, nL, 20000)
    Mo = true[nL:nL + nM]
    Mo[:, mi["CD4"]] = _pos(rng, nM, 1500, 0.2)  # monocytes are CD4 dim
    Mo[:, mi["CD45"]] = _pos(rng, nM, 10000)
    true[nL + nM:nL + nM + nG, mi["CD45"]] = _pos(rng, nG, 4000)
    true[nL + nM + nG:, mi["CD45"]] = _neg(rng, nD)
    # doublets: two random cells summed; height grows less than area
    a = rng.integers(0, n_single - nD, n_doub)
    b = rng.integers(0, n_single - nD, n_doub)
    d_true = true[a] + true[b]
    d_fsc = fsc[a] + fsc[b]
    d_ssc = ssc[a] + ssc[b]
    ratio = np.concatenate([rng.normal(0.85, 0.02, n_single), rng.normal(0.55, 0.05, n_doub)])
    true = np.vstack([true, d_true])
    fsc = np.concatenate([fsc, d_fsc])
    ssc = np.concatenate([ssc, d_ssc])
    fsch = fsc * ratio
    # spillover and detector noise (photon statistics -> spread after compensation)
    spill = default_spill()
    obs = true @ spill if spec.spill else true.copy()
    obs += rng.normal(0, 1, obs.shape) * np.sqrt(400 + 1.5 * np.abs(obs))
    # acquisition order and time
    perm = rng.permutation(spec.n_events)
    t = np.sort(rng.uniform(0, 60000, spec.n_events))
    if spec.time_gap:
        t[t > 30000] += 20000  # a 20 s stop in a 60 s run
    cols = [fsc[perm], fsch[perm], ssc[perm] * 1.0, ssc[perm] * 0.9]
    pnn = ["FSC-A", "FSC-H", "SSC-A", "SSC-H"]
    pns = ["", "", "", ""]
    for j, (det, stain, m) in enumerate(FLUOR_CHANNELS):
        if m == "TCRab" and not spec.tcrab:
            continue
        if m == "B220" and not spec.b220:
            continue
        cols.append(obs[perm, j])
        pnn.append(det)
        pns.append(spec.pns_overrides.get(m, stain))
    for e in range(spec.extra_channels):
        cols.append(rng.normal(30, 60, spec.n_events))
        pnn.append(f"X{e + 1}-A")
        pns.append("")
    cols.append(t)
    pnn.append("Time")
    pns.append("")
    data = np.column_stack(cols).astype(np.float32)
    np.clip(data[:, :-1], -111.0, RANGE - 1, out=data[:, :-1])
    keep = [j for j, (_, _, m) in enumerate(FLUOR_CHANNELS)
            if not (m == "TCRab" and not spec.tcrab) and not (m == "B220" and not spec.b220)]
    sp = spill[np.ix_(keep, keep)] if spec.spill else None
    truth = SyntheticTruth(
        n_events=spec.n_events, n_lymphocytes=nL, n_t=n_t, n_tcrab=ab.size, n_dnt=n_dnt,
        n_dn_cd3=n_dnt + gd_dn.size,
    )
    return data, pnn, pns, sp, truth


def _esc(v: str) -> str:
    return v.replace("/", "//")


def write_fcs(path: str | Path, data: np.ndarray, pnn: list[str], pns: list[str],
              ranges: list[float] | None = None, text: dict[str, str] | None = None) -> Path:
    """Write an FCS 3.1 file: float32 little-endian list mode, '/' delimiter (escaped)."""
    data = np.ascontiguousarray(data, dtype="<f4")
    n, p = data.shape
    kw: dict[str, str] = {
        "$BYTEORD": "1,2,3,4", "$DATATYPE": "F", "$MODE": "L", "$NEXTDATA": "0",
        "$PAR": str(p), "$TOT": str(n),
    }
    for i in range(p):
        kw[f"$P{i + 1}N"] = pnn[i]
        if pns[i]:
            kw[f"$P{i + 1}S"] = pns[i]
        kw[f"$P{i + 1}B"] = "32"
        kw[f"$P{i + 1}E"] = "0,0"
        kw[f"$P{i + 1}R"] = str(int(ranges[i] if ranges else RANGE))
    kw.update(text or {})
    payload = data.tobytes()
    text_start = 58
    begin = 0
    body = ""
    for _ in range(5):  # offsets change the TEXT length; iterate to a fixed point
        kw["$BEGINDATA"] = str(begin) if payload else "0"
        kw["$ENDDATA"] = str(begin + len(payload) - 1 if payload else 0)
        kw["$BEGINANALYSIS"] = kw["$ENDANALYSIS"] = kw["$BEGINSTEXT"] = kw["$ENDSTEXT"] = "0"
        body = "/" + "".join(f"{_esc(k)}/{_esc(v)}/" for k, v in kw.items())
        new_begin = text_start + len(body.encode("utf-8"))
        if new_begin == begin:
            break
        begin = new_begin
    tb = body.encode("utf-8")
    text_end = text_start + len(tb) - 1
    d0, d1 = begin, begin + len(payload) - 1
    if not payload:
        d0 = d1 = 0
    if d1 > 99_999_999:
        d0 = d1 = 0
    header = b"FCS3.1    " + b"".join(f"{v:>8d}".encode() for v in (text_start, text_end, d0, d1, 0, 0))
    out = Path(path)
    with out.open("wb") as fh:
        fh.write(header)
        fh.write(tb)
        fh.write(payload)
    return out


def write_synthetic(path: str | Path, spec: SyntheticSpec) -> SyntheticTruth:
    """Simulate ``spec`` and write it as an FCS file; returns the ground truth."""
    data, pnn, pns, spill, truth = make_sample(spec)
    fl = [i for i, s in enumerate(pns) if s]
    text = {
        "$DATE": spec.date.strftime("%d-%b-%Y").upper(), "$BTIM": "10:00:00", "$ETIM": "10:01:20",
        "$CYT": "alpsdx synthetic", "$TIMESTEP": "0.001", "$SRC": f"synthetic seed {spec.seed}",
    }
    if spill is not None:
        vals = ",".join(repr(float(v)) for v in spill.ravel())
        text["$SPILLOVER"] = f"{len(fl)}," + ",".join(pnn[i] for i in fl) + "," + vals
    write_fcs(path, data, pnn, pns, text=text)
    return truth
