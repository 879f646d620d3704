"""Find the ALPS panel's channels in an FCS file by stain name ($PnS), synonyms and overrides.

Labs name the same antibody many ways ("TCRαβ", "TCR a/b", "abTCR", "TCR alpha beta"); the
match is case-, space- and punctuation-insensitive and tolerates a fluorochrome in the stain
name ("CD3 APC-H7"). ``CD3=R780-A`` style overrides win over the search. A required marker
that cannot be found is a :class:`GatingError` listing every channel in the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from alpsdx.errors import GatingError, InputError

__all__ = [
    "MARKERS",
    "REQUIRED",
    "Panel",
    "normalise",
    "parse_overrides",
    "resolve_panel",
]

# canonical marker -> synonyms (normalised with ``normalise`` before comparison)
MARKERS: Mapping[str, tuple[str, ...]] = {
    "CD3": ("CD3", "CD3e", "CD3ε", "CD3 epsilon"),
    "TCRab": (
        "TCRαβ", "TCRab", "TCR a/b", "TCR a b", "abTCR", "αβTCR", "TCR alpha beta",
        "TCR alpha/beta", "alpha beta TCR", "TCR-αβ", "TCR1 ab", "TCRalphabeta", "ab T cell receptor",
    ),
    "CD4": ("CD4",),
    "CD8": ("CD8", "CD8a", "CD8α", "CD8 alpha"),
    "CD45": ("CD45", "PTPRC"),
    "B220": ("B220", "CD45R", "CD45R/B220", "CD45R B220", "CD45RB220"),
    "CD19": ("CD19",),
}
# The DNT definition needs these; the others refine it or add QC.
REQUIRED = ("CD3", "CD4", "CD8")

_SCATTER: Mapping[str, tuple[str, ...]] = {
    "FSC-A": ("FSC-A", "FS-A", "FSC", "FS", "FS INT", "FS LIN", "FSC-HLin"),
    "FSC-H": ("FSC-H", "FS-H", "FS PEAK", "FS PK"),
    "SSC-A": ("SSC-A", "SS-A", "SSC", "SS", "SS INT", "SS LIN", "SSC-HLin"),
    "Time": ("Time", "TIME", "HDR-T"),
}

_GREEK = str.maketrans({"α": "a", "β": "b", "γ": "g", "δ": "d", "ε": "e"})
_SPLIT = re.compile(r"[\s/\-_:,;()\[\]<>|]+")


def normalise(name: str) -> str:
    """Lower-case, Greek letters to Latin, every non-alphanumeric removed: 'TCR a/b' -> 'tcrab'."""
    name = name.translate(_GREEK).lower()
    name = name.replace("alpha", "a").replace("beta", "b") if "tcr" in name else name
    return re.sub(r"[^0-9a-z]", "", name)


_LOOKUP: dict[str, str] = {normalise(s): m for m, syns in MARKERS.items() for s in (m, *syns)}


def _marker_of(label: str | None) -> tuple[str, int] | None:
    """The marker a stain label names and how much of the label matched (longer is better)."""
    if not label or not label.strip():
        return None
    whole = normalise(label)
    if whole in _LOOKUP:
        return _LOOKUP[whole], 100
    tokens = [t for t in _SPLIT.split(label) if t]
    best: tuple[str, int] | None = None
    for i in range(len(tokens)):
        for j in range(i + 1, min(len(tokens), i + 4) + 1):
            key = normalise(" ".join(tokens[i:j]))
            if key in _LOOKUP and (best is None or len(key) > best[1]):
                best = (_LOOKUP[key], len(key))
    return best


@dataclass(frozen=True)
class Panel:
    """Marker -> channel ($PnN) for one file, plus the scatter and time channels found."""

    markers: Mapping[str, str]
    scatter: Mapping[str, str] = field(default_factory=dict)
    source: Mapping[str, str] = field(default_factory=dict)  # marker -> "PnS" | "PnN" | "override"

    def get(self, marker: str) -> str | None:
        return self.markers.get(marker)

    def has(self, marker: str) -> bool:
        return marker in self.markers


def _describe(pnn: Sequence[str], pns: Sequence[str | None]) -> str:
    parts = []
    for n, s in zip(pnn, pns, strict=True):
        parts.append(f"{n} ({s.strip()})" if s and s.strip() else n)
    return ", ".join(parts)


def parse_overrides(items: Iterable[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``["CD3=R780-A", ...]`` -> ``{"CD3": "R780-A"}`` with the marker name canonicalised."""
    if items is None:
        return {}
    pairs = items.items() if isinstance(items, Mapping) else []
    out: dict[str, str] = {}
    if not isinstance(items, Mapping):
        parsed = []
        for raw in items:
            if "=" not in raw:
                raise InputError("channel override must look like MARKER=CHANNEL", field="--channel",
                                 value=raw, expected="e.g. CD3=R780-A")
            k, v = raw.split("=", 1)
            parsed.append((k.strip(), v.strip()))
        pairs = parsed
    for k, v in pairs:
        key = normalise(k)
        marker = _LOOKUP.get(key) or next((s for s in _SCATTER if normalise(s) == key), None)
        if marker is None:
            raise InputError("unknown marker in channel override", field="--channel", value=k,
                             expected="one of " + ", ".join([*MARKERS, *_SCATTER]))
        if not v:
            raise InputError("channel override has no channel", field="--channel", value=k)
        out[marker] = v
    return out


def resolve_panel(
    pnn: Sequence[str],
    pns: Sequence[str | None],
    overrides: Mapping[str, str] | Iterable[str] | None = None,
    required: Sequence[str] = REQUIRED,
) -> Panel:
    """Map the panel's markers to channel names; raises GatingError for a missing required marker."""
    ov = parse_overrides(overrides)
    pns_list = [s or "" for s in pns]
    markers: dict[str, str] = {}
    source: dict[str, str] = {}
    scatter: dict[str, str] = {}

    # 1. overrides: the value is a PnN, else a PnS, else an error listing the channels
    for marker, chan in ov.items():
        if chan in pnn:
            name = chan
        else:
            hits = [n for n, s in zip(pnn, pns_list, strict=True) if s.strip() == chan]
            if len(hits) != 1:
                raise GatingError(
                    f"channel override {marker}={chan}: no such channel in the file",
                    field="--channel", value=chan,
                    expected="a $PnN (or $PnS) of: " + _describe(pnn, pns),
                )
            name = hits[0]
        if marker in _SCATTER:
            scatter[marker] = name
        else:
            markers[marker] = name
            source[marker] = "override"

    # 2. stain names ($PnS), then channel names ($PnN) for files that carry the marker there
    for where, labels in (("PnS", pns_list), ("PnN", list(pnn))):
        found: dict[str, list[tuple[int, str]]] = {}
        for chan, label in zip(pnn, labels, strict=True):
            hit = _marker_of(label)
            if hit:
                found.setdefault(hit[0], []).append((hit[1], chan))
        for marker, hits in found.items():
            if marker in markers:
                continue
            hits.sort(reverse=True)
            if len(hits) > 1 and hits[0][0] == hits[1][0]:
                chans = ", ".join(c for _, c in hits)
                raise GatingError(
                    f"marker {marker} matches several channels ({chans}); choose one with --channel",
                    field=marker, value=chans, expected=f"--channel {marker}=<PnN>",
                )
            markers[marker] = hits[0][1]
            source[marker] = where

    # 3. scatter and time by their conventional channel names
    norm_pnn = {normalise(n): n for n in pnn}
    for key, names in _SCATTER.items():
        if key in scatter:
            continue
        for cand in names:
            if normalise(cand) in norm_pnn:
                scatter[key] = norm_pnn[normalise(cand)]
                break

    missing = [m for m in required if m not in markers]
    if missing:
        raise GatingError(
            f"marker{'s' if len(missing) > 1 else ''} {', '.join(missing)} not found in the file",
            field="markers", value=", ".join(missing),
            expected="a channel whose $PnS names it, or --channel MARKER=PnN; channels: "
            + _describe(pnn, pns),
        )
    return Panel(markers=markers, scatter=scatter, source=source)
