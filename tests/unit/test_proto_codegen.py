"""The generated code in airtime/v1 and the descriptor set proto/airtime_descriptor.pb are
exactly what `make proto` produces now."""

from __future__ import annotations

from pathlib import Path

from grpc_server import codegen


def test_generated_code_matches_the_protos(tmp_path: Path) -> None:
    fresh = {p.name: p.read_bytes() for p in codegen.generate(tmp_path)}
    checked_in_dir = codegen.ROOT / codegen.PACKAGE_DIR
    checked_in = {p.name: p.read_bytes() for p in checked_in_dir.iterdir()
                  if p.is_file() and p.suffix in (".py", ".pyi")}
    stale = sorted(name for name in fresh.keys() | checked_in.keys()
                   if fresh.get(name) != checked_in.get(name))
    assert not stale, f"airtime/v1 is stale ({', '.join(stale)}): run `make proto`"


def test_descriptor_set_matches_the_protos(tmp_path: Path) -> None:
    codegen.generate(tmp_path)
    checked_in = codegen.ROOT / codegen.DESCRIPTOR_SET
    assert checked_in.exists(), "run `make proto`"
    assert (tmp_path / codegen.DESCRIPTOR_SET).read_bytes() == checked_in.read_bytes(), (
        f"{codegen.DESCRIPTOR_SET} is stale: run `make proto`")
