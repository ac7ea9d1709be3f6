"""Project API keys, stored hashed in a JSON file under the data directory.

Keys are 192-bit random tokens, so a plain SHA-256 is the right hash (a slow password hash buys nothing for
high-entropy secrets and would cost every request). The file is re-read when it changes on disk, so keys made
with `pravis keys create` work on a running gateway without a restart: a key not known yet is looked for in
the file at once, while a known key's file is checked at most every `recheck_s` seconds (the gateway's
`PRAVIS_KEYS_RECHECK_S`), so a busy gateway makes no filesystem call per request and a revocation takes
effect within that time.
"""

import hashlib
import hmac
import json
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

KeyKind = Literal["write", "secret"]
_PREFIX: dict[str, str] = {"write": "pvw_", "secret": "pvs_"}


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    project_id: str
    kind: KeyKind
    key_hash: str
    created_at: str
    revoked_at: str | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(kind: KeyKind) -> str:
    return _PREFIX[kind] + secrets.token_urlsafe(24)


class KeyStore:
    def __init__(
        self, path: Path, recheck_s: float = 0.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._by_hash: dict[str, ApiKey] = {}
        self._loaded_version: tuple[int, int, int] | None = None
        self._recheck_s, self._clock = recheck_s, clock
        self._checked_at = -float("inf")

    def _read(self) -> list[ApiKey]:
        if not self.path.exists():
            return []
        return [ApiKey(**row) for row in json.loads(self.path.read_text())["keys"]]

    def _write(self, keys: list[ApiKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename so a gateway reloading concurrently never sees half a file.
        with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False) as tmp:
            json.dump({"keys": [asdict(k) for k in keys]}, tmp, indent=2)
        os.chmod(tmp.name, 0o600)
        os.replace(tmp.name, self.path)
        self._checked_at = -float("inf")  # a change made through this store counts at once

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
            # Every write replaces the file, and mtime alone is as coarse as the kernel's clock tick.
            version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            version = None
        if version != self._loaded_version:
            self._by_hash = {k.key_hash: k for k in self._read()}
            self._loaded_version = version
        self._checked_at = self._clock()

    def verify(self, key: str, kind: KeyKind) -> ApiKey | None:
        """The active key of that kind matching `key`, or None."""
        digest = hash_key(key)
        with self._lock:
            if digest not in self._by_hash or self._clock() - self._checked_at >= self._recheck_s:
                self._refresh()
            found = self._by_hash.get(digest)
        if found is None or found.revoked_at or found.kind != kind:
            return None
        return found if hmac.compare_digest(found.key_hash, digest) else None

    def create(self, project_id: str, kind: KeyKind = "write", key: str | None = None) -> tuple[str, ApiKey]:
        """Register a key (a new random one unless given); registering an existing key again is a no-op."""
        key = key or new_key(kind)
        with self._lock:
            keys = self._read()
            digest = hash_key(key)
            for existing in keys:
                if existing.key_hash == digest and not existing.revoked_at:
                    return key, existing
            record = ApiKey(
                key_id=digest[:12],
                project_id=project_id,
                kind=kind,
                key_hash=digest,
                created_at=datetime.now(UTC).isoformat(),
            )
            self._write([*keys, record])
        return key, record

    def list(self) -> list[ApiKey]:
        with self._lock:
            return self._read()

    def revoke(self, key_id: str) -> bool:
        with self._lock:
            keys = self._read()
            now = datetime.now(UTC).isoformat()
            changed = [
                ApiKey(**{**asdict(k), "revoked_at": now}) if k.key_id == key_id and not k.revoked_at else k
                for k in keys
            ]
            if changed == keys:
                return False
            self._write(changed)
        return True
