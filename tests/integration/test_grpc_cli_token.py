"""`airtime query --server` takes its bearer token from a file or the environment, not only
from the command line (where every local user reads it in the process list), against a
real `airtime serve` that requires tokens. A named token file that yields no token is exit 2
naming it, before any call."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli.main import main
from tests.integration.grpc_fixtures import (  # noqa: F401
    ROOT,
    airtime_cli,
    forecast_table,
    publish_run,
    wait_until_serving,
    warehouse,
)

RUN = dt.date(2026, 11, 30)
TOKEN = "cli-s3cret-token"
QUERY = ("query", "program", "--program", "HUCK", "--date", "2026-12-01", "--format", "csv")
TOKEN_SETTINGS = ("AIRTIME_TOKENS", "AIRTIME_TOKENS_FILE", "AIRTIME_QUERY_TOKEN", "AIRTIME_QUERY_TOKEN_FILE")


@dataclass
class Server:
    target: str
    env: dict[str, str]  # a client's: the warehouse's home, no token setting
    folder: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from airtime.duckdb_warehouse import DuckDBWarehouse

    folder = tmp_path_factory.mktemp("cli-token")
    store = DuckDBWarehouse(folder / "home" / "warehouse.duckdb")
    publish_run(store, RUN, forecast_table(RUN), folder)
    (folder / "server-tokens").write_text(f"# the server's tokens\nother-token\n{TOKEN}\n")
    env = {k: v for k, v in os.environ.items() if k not in TOKEN_SETTINGS}
    env |= {"AIRTIME_HOME": str(folder / "home"), "AIRTIME_METRICS_PORT": "0", "PYTHONPATH": str(ROOT)}
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port)], cwd=ROOT,
                               env=env | {"AIRTIME_TOKENS_FILE": str(folder / "server-tokens")})
    try:
        wait_until_serving(port, process)
        yield Server(f"127.0.0.1:{port}", env, folder)
    finally:
        process.terminate()
        process.wait(30)


def _clear_token_settings(monkeypatch: pytest.MonkeyPatch, server: Server) -> None:
    for name in TOKEN_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRTIME_HOME", server.env["AIRTIME_HOME"])


def test_the_token_comes_from_a_file_or_the_environment_and_not_from_the_command_line(
        server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    token_file = server.folder / "my-token"
    token_file.write_text(f"# mine\n{TOKEN}\n")
    # a real `airtime` process: nothing of the token on its command line
    command = [*QUERY, "--server", server.target, "--token-file", str(token_file)]
    remote = airtime_cli(server.env, *command)
    assert remote.returncode == 0, remote.stderr
    assert TOKEN not in " ".join(command)
    assert "run_date,signal,program_code" in remote.stdout and f"{RUN},SP1,HUCK,2026-12-01" in remote.stdout
    # the other ways, through the same command line code, in this process (faster)
    _clear_token_settings(monkeypatch, server)
    ways = {
        "AIRTIME_QUERY_TOKEN": ({"AIRTIME_QUERY_TOKEN": TOKEN}, ()),
        "AIRTIME_QUERY_TOKEN_FILE": ({"AIRTIME_QUERY_TOKEN_FILE": str(token_file)}, ()),
        "--token-file over a wrong AIRTIME_QUERY_TOKEN": ({"AIRTIME_QUERY_TOKEN": "wrong"},
                                                          ("--token-file", str(token_file))),
        "--token, still taken": ({}, ("--token", TOKEN)),
    }
    for way, (env, args) in ways.items():
        with monkeypatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            assert main([*QUERY, "--server", server.target, *args]) == 0, (way, capsys.readouterr().err)
        assert capsys.readouterr().out == remote.stdout, way
    assert main([*QUERY, "--server", server.target]) == 2  # no token anywhere: refused by the server
    assert "UNAUTHENTICATED" in capsys.readouterr().err


def _bad_files(folder: Path) -> dict[str, Path]:
    (folder / "empty").write_text("")
    (folder / "comments").write_text("# rotated next week\n\n")
    (folder / "not-utf8").write_bytes(b"tok\xffen\n")
    (folder / "a-folder").mkdir(exist_ok=True)
    (folder / "spaces").write_text("two words\n")
    return {"missing": folder / "absent", "empty": folder / "empty", "comments only": folder / "comments",
            "not UTF-8": folder / "not-utf8", "a folder": folder / "a-folder", "a space in it": folder / "spaces"}


@pytest.mark.parametrize("where", ["--token-file", "AIRTIME_QUERY_TOKEN_FILE"])
def test_a_token_file_that_yields_no_token_is_exit_2_naming_it(where: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture) -> None:
    for name in TOKEN_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRTIME_TOKENS", "a-fallback-that-must-not-be-used")
    monkeypatch.setenv("AIRTIME_HOME", str(tmp_path / "home"))
    # a port nothing listens on: the error must come before any call
    target = f"127.0.0.1:{_free_port()}"
    for case, path in _bad_files(tmp_path).items():
        args = [*QUERY, "--server", target]
        if where == "--token-file":
            args += ["--token-file", str(path)]
        else:
            monkeypatch.setenv("AIRTIME_QUERY_TOKEN_FILE", str(path))
        assert main(args) == 2, case
        err = capsys.readouterr().err
        assert err.startswith("error (ConfigError): ") and str(path) in err and where in err, (case, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, (case, err)


def test_token_and_token_file_together_are_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*QUERY, "--server", "127.0.0.1:1", "--token", "x", "--token-file", "y"])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
