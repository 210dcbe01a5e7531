"""Bearer tokens fail closed, compare in constant time and follow a rotated Secret file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airtime.errors import ConfigError
from grpc_server.auth import Tokens, bearer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("inline", [",,,", "", " , ", ",\n,"])
def test_inline_tokens_that_yield_none_refuse_to_start(inline: str) -> None:
    with pytest.raises(ConfigError, match="AIRTIME_TOKENS yield no bearer token"):
        Tokens(inline)


def test_a_tokens_file_of_comments_and_blank_lines_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# rotated monthly\n\n   \n  # none yet\n")
    with pytest.raises(ConfigError, match="yield no bearer token"):
        Tokens(None, path)


def test_no_tokens_configured_is_auth_off_and_configured_ones_are_required() -> None:
    assert not Tokens(None, None).enabled
    tokens = Tokens("alpha, beta")
    assert tokens.enabled and len(tokens) == 2
    assert tokens.accepts(b"alpha") and tokens.accepts(b"beta")
    for wrong in (b"", b"alph", b"alphaa", b"ALPHA", b"alpha,beta"):
        assert not tokens.accepts(wrong)


def test_bearer_reads_only_a_bearer_authorization_header() -> None:
    assert bearer((("authorization", "Bearer  abc "),)) == b"abc"
    assert bearer((("authorization", "Basic abc"),)) == b""
    assert bearer((("x-authorization", "Bearer abc"),)) == b""
    assert bearer(None) == b""


def _swap(folder: Path, text: str) -> None:
    """What the kubelet does to a mounted Secret: write a new file, rename it over the old."""
    new = folder / "tokens.new"
    new.write_text(text)
    os.replace(new, folder / "tokens")


def test_a_rotated_tokens_file_is_re_read_without_restart(tmp_path: Path) -> None:
    _swap(tmp_path, "old-token\n")
    clock = Clock()
    tokens = Tokens(None, tmp_path / "tokens", recheck=1.0, clock=clock)
    assert tokens.accepts(b"old-token")
    _swap(tmp_path, "# rotated\nnew-token\n")
    assert tokens.accepts(b"old-token")  # not looked at again before `recheck` seconds
    clock.now = 1.5
    assert tokens.accepts(b"new-token") and not tokens.accepts(b"old-token")


def test_a_rotation_to_an_empty_or_missing_file_keeps_the_previous_tokens(tmp_path: Path) -> None:
    _swap(tmp_path, "kept\n")
    clock = Clock()
    tokens = Tokens(None, tmp_path / "tokens", recheck=1.0, clock=clock)
    _swap(tmp_path, "# emptied by mistake\n")
    clock.now = 2
    assert tokens.accepts(b"kept") and not tokens.accepts(b"")
    (tmp_path / "tokens").unlink()
    clock.now = 4
    assert tokens.accepts(b"kept")
    _swap(tmp_path, "after\n")
    clock.now = 6
    assert tokens.accepts(b"after") and not tokens.accepts(b"kept")
