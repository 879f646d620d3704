"""The cited knowledge base: thresholds, ranges, maps and citations, as versioned data.

Every figure alpsdx compares against lives in a YAML file under ``knowledge/data/`` with
the key of its citation. Files are read once and handed out as read-only mappings.
This package imports no other alpsdx module (held by import-linter).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import cache, lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Any

import yaml

from alpsdx.errors import KnowledgeError

__all__ = ["citation", "citations", "freeze", "kb_version", "load", "resolve_citation", "thaw"]


def freeze(obj: Any) -> Any:
    """Deep read-only copy: dicts become MappingProxyType, lists become tuples."""
    if isinstance(obj, dict):
        return MappingProxyType({k: freeze(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return tuple(freeze(v) for v in obj)
    return obj


def thaw(obj: Any) -> Any:
    """Plain (JSON-serialisable) copy of a frozen knowledge value."""
    if isinstance(obj, Mapping):
        return {k: thaw(v) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return [thaw(v) for v in obj]
    return obj


def _data_dir() -> Any:
    return resources.files(__name__).joinpath("data")


@cache
def load(name: str) -> Mapping[str, Any]:
    """Load ``knowledge/data/<name>.yaml`` (``name`` may contain a sub-folder, e.g. ``criteria/nih2009``)."""
    path = _data_dir().joinpath(*f"{name}.yaml".split("/"))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise KnowledgeError("knowledge file not found", field="knowledge", value=name) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"knowledge file is not valid YAML: {exc}", field="knowledge", value=name) from exc
    if not isinstance(data, dict):
        raise KnowledgeError("knowledge file must hold a mapping", field="knowledge", value=name)
    frozen: Mapping[str, Any] = freeze(data)
    return frozen


def citations() -> Mapping[str, Mapping[str, Any]]:
    """All citations, key -> {text, doi, pmid, url, note}."""
    result: Mapping[str, Mapping[str, Any]] = load("citations")["citations"]
    return result


def citation(key: str) -> Mapping[str, Any]:
    """One citation by key; an unknown key is a knowledge-base bug, not user error."""
    try:
        return citations()[key]
    except KeyError as exc:
        raise KnowledgeError("unknown citation key", field="citation", value=key) from exc


def resolve_citation(key: str) -> str:
    """The citation text a clinician sees, e.g. 'Oliveira JB ... Blood. 2010;116(14):e35-e40.'"""
    return str(citation(key)["text"])


@lru_cache(maxsize=1)
def kb_version() -> str:
    """Version stamp of the knowledge base: package version + a hash of every data file.

    Stored with each evaluation so a result can be reproduced with the rules that made it.
    """
    from alpsdx import __version__

    digest = hashlib.sha256()
    root = _data_dir()

    def walk(node: Any, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            rel = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, rel + "/")
            elif child.name.endswith((".yaml", ".json")):
                digest.update(rel.encode())
                digest.update(child.read_bytes())

    walk(root, "")
    return f"{__version__}+kb.{digest.hexdigest()[:12]}"
