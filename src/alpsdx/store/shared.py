"""Replay protection for CDS client JWT ids shared by the worker processes of one host.

On SQLite (one host by nature) each accepted id is an empty file created with ``O_EXCL`` in
a directory beside the database file: creation is atomic across processes, costs no lock and
no transaction, and its modification time holds the token's expiry for the purge. Files are
not fsynced: after a power loss a token seen in the last moments could be replayed until it
expires (at most five minutes), which the JWT's own expiry bounds.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from sqlalchemy import Engine

from alpsdx.errors import StoreError

__all__ = ["PURGE_EVERY_S", "JtiFiles", "sqlite_state_dir"]

PURGE_EVERY_S = 30.0  # expired JWT ids (files or cds_jti rows) are deleted at most this often per process


def sqlite_state_dir(engine: Engine, name: str) -> Path | None:
    """``<database file>-<name>/`` for a file-backed SQLite database, else ``None``."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    db = Path(database).resolve()
    return db.with_name(f"{db.name}-{name}")


class JtiFiles:
    """JWT ids as files (see the module docstring); an in-memory set where there is no file."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._memory: dict[str, float] = {}
        self._lock = threading.Lock()
        self._last_purge = 0.0

    def record(self, jti: str, exp: float, now: float, forget_before: float) -> bool:
        name = hashlib.sha256(jti.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        if self.folder is None:  # an in-memory database lives in one process
            with self._lock:
                for k in [k for k, e in self._memory.items() if e < forget_before]:
                    del self._memory[k]
                if name in self._memory:
                    return False
                self._memory[name] = exp
                return True
        if now - self._last_purge > PURGE_EVERY_S:
            self._purge(forget_before)
            self._last_purge = now
        path = self.folder / name
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return False
        except FileNotFoundError:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            return self.record(jti, exp, now, forget_before)
        except OSError as exc:
            raise StoreError(f"cannot record the JWT id: {exc.strerror}", field="jti") from None
        try:
            os.utime(fd, (exp, exp))
        finally:
            os.close(fd)
        return True

    def _purge(self, forget_before: float) -> None:
        try:
            with os.scandir(self.folder) as entries:
                for entry in entries:
                    try:
                        if entry.stat().st_mtime < forget_before:
                            os.unlink(entry.path)
                    except FileNotFoundError:  # another worker purged it first
                        continue
        except FileNotFoundError:
            return
