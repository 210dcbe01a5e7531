"""Generate the Python code of proto/ into airtime/v1/ (the one command: `make proto`),
and the descriptor set Cloud Endpoints (ESPv2) needs, `proto/airtime_descriptor.pb`.

`python -m grpc_server.codegen [--out DIR]`; a test regenerates into a temporary folder
and fails when the checked-in code or descriptor set differs, so neither is ever edited by
hand nor stale.

The descriptor set is what Cloud Endpoints is deployed with and ESPv2's transcoder reads: every file the service's protos import
included (`--include_imports`), comments kept for the generated docs
(`--include_source_info`), as Envoy's gRPC-JSON transcoder docs build it
(https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/grpc_json_transcoder_filter,
"How to generate proto descriptor set"; ESPv2 runs that transcoder).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = ROOT / "proto"
PACKAGE_DIR = Path("airtime") / "v1"
# relative to the root written to (the repository by default)
DESCRIPTOR_SET = Path("proto") / "airtime_descriptor.pb"
INIT_TEXT = '"""Generated from proto/airtime/v1 by `python -m grpc_server.codegen`. Do not edit."""\n'


# grpc_tools is a dev dependency (make proto), not in the image: imported where used
def _include_paths() -> list[Path]:
    import google.type.date_pb2  # googleapis-common-protos ships the .proto beside the module
    import grpc_tools

    common_protos = Path(google.type.date_pb2.__file__).resolve().parents[2]
    well_known = Path(grpc_tools.__file__).resolve().parent / "_proto"
    return [PROTO_ROOT, common_protos, well_known]


def _mypy_plugins() -> list[str]:
    # the plugins are console scripts installed beside this interpreter
    bin_dir = Path(sys.executable).parent
    return [
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
    ]


def generate(out: Path) -> list[Path]:
    """Write the generated modules under out/airtime/v1 and the descriptor set at
    out/proto/airtime_descriptor.pb; return the modules' paths."""
    from grpc_tools import protoc

    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))
    target = out / PACKAGE_DIR
    if target.exists():
        for old in target.glob("*_pb2*.py*"):
            old.unlink()
    target.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        *(f"-I{p}" for p in _include_paths()),
        *_mypy_plugins(),
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed: {' '.join(args)}")
    descriptor = out / DESCRIPTOR_SET
    descriptor.parent.mkdir(parents=True, exist_ok=True)
    # a second run: protoc writes one descriptor set for all the files it is given
    args = ["grpc_tools.protoc", *(f"-I{p}" for p in _include_paths()), "--include_imports",
            "--include_source_info", f"--descriptor_set_out={descriptor}", *protos]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed: {' '.join(args)}")
    (target / "__init__.py").write_text(INIT_TEXT)
    return sorted(p for p in target.iterdir() if p.is_file())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT, help="root to write airtime/v1 under")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        # generate aside, then replace: a failing protoc leaves the checked-in code intact
        files = generate(Path(tmp))
        target = args.out / PACKAGE_DIR
        target.mkdir(parents=True, exist_ok=True)
        for old in target.glob("*_pb2*.py*"):
            old.unlink()
        for path in files:
            shutil.copy2(path, target / path.name)
            print(target / path.name)
        descriptor = args.out / DESCRIPTOR_SET
        descriptor.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(tmp) / DESCRIPTOR_SET, descriptor)
        print(descriptor)


if __name__ == "__main__":
    main()
