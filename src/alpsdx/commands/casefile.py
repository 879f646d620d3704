"""Appending derived items (DNT observations, variants) to a case file, safely.

Shared by ``alpsdx dnt --case`` and ``alpsdx variants --case``: the file is read as JSON or
YAML, the existing content must be a valid case, exact repeats are skipped, the new content
is validated as a whole case *before* anything is written, and the write is a temporary file
in the same folder renamed over the original (atomic on POSIX): a bad input never leaves a
half-written case.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import yaml

from alpsdx.errors import InputError
from alpsdx.model import case_from_dict

__all__ = ["append_items", "read_case_raw"]


def read_case_raw(path: Path) -> tuple[dict[str, Any], str]:
    """The case file as a plain dict and its format ('json' or 'yaml')."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("case file not found", field="--case", value=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the case file: {exc}", field="--case", value=str(path)) from None
    is_json = path.suffix.lower() == ".json" or (
        path.suffix.lower() not in (".yaml", ".yml") and text.lstrip().startswith("{"))
    try:
        data = json.loads(text) if is_json else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"not valid {'JSON' if is_json else 'YAML'}: {exc}", field="--case",
                         value=str(path)) from None
    if not isinstance(data, dict):
        raise InputError("a case must be a JSON/YAML object", field="--case", value=str(path))
    return data, "json" if is_json else "yaml"


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def append_items(path: str | Path, key: str, items: Sequence[dict[str, Any]],
                 identity: Callable[[dict[str, Any]], Hashable]) -> int:
    """Append ``items`` under ``key`` (e.g. 'observations'), skipping those whose ``identity``
    is already present; returns how many were added."""
    p = Path(path)
    data, fmt = read_case_raw(p)
    case_from_dict(data, str(p))  # the existing file must be valid to begin with
    existing = list(data.get(key) or [])
    seen = {identity(e) for e in existing if isinstance(e, dict)}
    added = 0
    for item in items:
        k = identity(item)
        if k in seen:
            continue
        seen.add(k)
        existing.append(item)
        added += 1
    data[key] = existing
    case_from_dict(data, str(p))
    text = (json.dumps(data, indent=2, ensure_ascii=False) + "\n" if fmt == "json"
            else yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    _write_atomically(p, text)
    return added
