"""Who may post for a participant session: an HMAC token, and how often.

A session's token is HMAC-SHA256(server secret, plan hash, participant, session). The server
hands it out when it assigns a participant (`/api/assign`), and `bodyscene experiment links`
writes participant URLs that carry it (what goes to Prolific); every post and the session
query must present it. Without the secret nobody can make a token, so nobody can write rows for
someone else, nor make the real participant's page say "Welcome back". The secret lives beside
the data (`web-secret`, created on first use, readable by its owner only)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from pathlib import Path

from bodyscene.errors import BadInput

SECRET_NAME = "web-secret"
TOKEN_HEX = 32


def load_secret(data_dir: str | Path, path: str | Path | None = None) -> bytes:
    """The server secret from `path` (default `<data_dir>/web-secret`), created there with 32
    random bytes when it does not exist yet."""
    path = Path(path) if path is not None else Path(data_dir) / SECRET_NAME
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:       # another process made it first: use theirs
            pass
        else:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(secrets.token_hex(32) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
    text = path.read_text(encoding="ascii", errors="replace").strip()
    if len(text) < 32:
        raise BadInput(f"{path}: the web secret must hold at least 32 characters")
    return text.encode("ascii", errors="replace")


def session_token(secret: bytes, plan_sha256: str, participant: str, session: int) -> str:
    """The token for one participant session of one plan."""
    msg = f"bodyscene-session:{plan_sha256}:{participant}:{int(session)}".encode("utf-8")
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()[:TOKEN_HEX]


def token_ok(secret: bytes, plan_sha256: str, participant: str, session: int,
             token: str) -> bool:
    """Whether `token` is this session's (compared in constant time)."""
    want = session_token(secret, plan_sha256, participant, session)
    return hmac.compare_digest(want.encode("ascii"), token.encode("utf-8", errors="replace"))


class RateLimit:
    """A token bucket per session token: `burst` posts at once (a page flushing its queue after
    an outage), then `per_s` a second. `allow` answers whether one more post may go through."""

    def __init__(self, per_s: float = 10.0, burst: int = 200):
        self.per_s, self.burst = float(per_s), float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            level, last = self._buckets.get(key, (self.burst, now))
            level = min(self.burst, level + (now - last) * self.per_s)
            if level < 1.0:
                self._buckets[key] = (level, now)
                return False
            self._buckets[key] = (level - 1.0, now)
            return True
