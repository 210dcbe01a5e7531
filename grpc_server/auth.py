"""Bearer tokens: where they come from, fail-closed loading, rotation, comparison.

- Fail closed: a configured source (AIRTIME_TOKENS, AIRTIME_TOKENS_FILE) that yields no
  token (",,,", a file of comments and blank lines) is a ConfigError at start, never
  "authentication off". Auth is off only when neither setting is given at all.
- Rotation: a Kubernetes Secret mounted as a volume changes in place (the kubelet swaps
  the `..data` symlink: new inode, new mtime). The file is stat-ed at most once per
  `recheck` seconds and re-read when its identity changed. A re-read that fails (missing,
  unreadable, not UTF-8) or finds no token keeps the previous tokens, with one warning per
  state of the file (not one a second): a botched rotation must neither open the service,
  nor lock every client out, nor flood the log. At start the same file is a ConfigError
  (exit 2) naming it, and for bytes that are not UTF-8 their offset.
- Comparison: SHA-256 of the given and of each configured token, compared with
  hmac.compare_digest against every token without stopping early: the time taken says
  neither which token matched nor how long the configured ones are.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from airtime.errors import ConfigError
from airtime.settings import Settings

log = logging.getLogger(__name__)

RECHECK_SECONDS = 1.0
FILE_SETTING = "tokens file (AIRTIME_TOKENS_FILE)"


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


def parse_inline(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_file(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of a file of tokens; ConfigError naming it (`what`: which file, and
    the setting that names it), and for bytes that are not UTF-8 their offset, never the
    bytes themselves: they may be part of a token."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what}, {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"the {what}, {path}, is not UTF-8 text: invalid byte at offset {exc.start}"
                          f" (line {line})") from None


def _encoded(tokens: list[str], source: str) -> list[bytes]:
    try:
        return [t.encode() for t in tokens]
    except UnicodeEncodeError:  # os.environ keeps undecodable bytes as lone surrogates
        raise ConfigError(f"{source} is not UTF-8 text") from None


class Tokens:
    """The accepted bearer tokens; `enabled` is False only when none are configured."""

    def __init__(self, inline: str | None = None, file: Path | None = None, *,
                 recheck: float = RECHECK_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._inline = _encoded(parse_inline(inline), "AIRTIME_TOKENS") if inline is not None else []
        self._file = file
        self._recheck = recheck
        self._clock = clock
        self._lock = threading.Lock()
        self.enabled = inline is not None or file is not None
        # what the file was when last looked at (stat, or the error stat gave): a rotation
        # is read, and a botched one warned about, once per state of the file
        self._seen: tuple | None = None
        self._next_check = 0.0
        file_tokens = self._read_file() if file is not None else []
        tokens = self._inline + file_tokens
        if self.enabled and not tokens:
            sources = " and ".join(name for name, given in (
                ("AIRTIME_TOKENS", inline is not None), (f"AIRTIME_TOKENS_FILE ({file})", file is not None))
                if given)
            raise ConfigError(f"{sources} yield no bearer token: refusing to serve without"
                              " authentication (unset them to run without tokens)")
        self._digests = [_digest(t) for t in tokens]
        self._next_check = clock() + recheck

    @classmethod
    def from_settings(cls, settings: Settings) -> Tokens:
        return cls(settings.tokens, settings.tokens_file)

    def __len__(self) -> int:
        return len(self._digests)

    def _identity(self) -> tuple:
        assert self._file is not None
        try:
            st = os.stat(self._file)  # follows the Secret volume's symlinks
        except OSError as exc:
            return ("unreadable", exc.errno)
        # ctime too: a chmod that makes the file readable again changes only it
        return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)

    def _read_file(self) -> list[bytes]:
        assert self._file is not None
        self._seen = self._identity()
        return _encoded(parse_file(read_text(self._file, FILE_SETTING)), FILE_SETTING)

    def _maybe_reload(self) -> None:
        now = self._clock()
        if self._file is None or now < self._next_check:
            return
        with self._lock:
            if now < self._next_check:
                return
            self._next_check = now + self._recheck
            if self._identity() == self._seen:
                return
            try:
                tokens = self._inline + self._read_file()
            except ConfigError as exc:
                log.warning("%s: keeping the previous %d tokens until the file changes", exc,
                            len(self._digests))
                return
            if not tokens:
                log.warning("the %s, %s, now holds no token: keeping the previous %d until the file"
                            " changes", FILE_SETTING, self._file, len(self._digests))
                return
            self._digests = [_digest(t) for t in tokens]
            log.info("tokens file %s re-read: %d tokens", self._file, len(tokens))

    def accepts(self, given: bytes) -> bool:
        """Whether `given` is one of the tokens (False for b"")."""
        self._maybe_reload()
        if not given:
            return False
        wanted = _digest(given)
        ok = False
        for digest in self._digests:
            ok |= hmac.compare_digest(digest, wanted)
        return ok


def read_client_token(path: Path, what: str) -> str:
    """The bearer token a client sends, read from a file: its first line that is neither
    blank nor a `#` comment (a server's tokens file works too). ConfigError naming the file
    (`what`: which file, and the option or setting that names it) when it is missing,
    unreadable, not UTF-8, holds no token, or one a header cannot carry."""
    tokens = parse_file(read_text(path, what))
    if not tokens:
        raise ConfigError(f"the {what}, {path}, holds no token (blank lines and # comments only)")
    if not _HEADER_TOKEN.fullmatch(tokens[0]):
        raise ConfigError(f"the {what}, {path}, holds a token with characters an authorization header"
                          " cannot carry (spaces, control characters or non-ASCII)")
    return tokens[0]


# what `Authorization: Bearer <token>` can carry: visible ASCII (RFC 9110 field values; the
# RFC 6750 b64token alphabet is a subset of it)
_HEADER_TOKEN = re.compile(r"[\x21-\x7e]+")


def bearer(metadata) -> bytes:  # noqa: ANN001 - sequence of (key, value)
    """The token of an `authorization: Bearer <token>` header, or b"" (gRPC metadata and
    the HTTP gateway's header alike)."""
    for key, value in metadata or ():
        if key == "authorization":
            text = value if isinstance(value, str) else value.decode(errors="replace")
            # RFC 9110 section 11.1: the auth-scheme is "a case-insensitive token", so
            # `bearer` and `BEARER` are Bearer; section 11.4: credentials = auth-scheme
            # [ 1*SP ( token68 / #auth-param ) ], so one or more spaces follow it
            scheme, space, token = text.partition(" ")
            if space and scheme.lower() == "bearer":
                return token.strip().encode()
    return b""
