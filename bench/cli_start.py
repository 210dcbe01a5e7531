"""Start-up of the command line: `airtime --help` and a local `airtime query program` on the
bundled sample, this tree against a git ref of it (default: main), side by side.

    .venv/bin/python -m bench.cli_start [--baseline main] [--runs 11] [--without pandas]

The baseline is `git archive REF` unpacked in a scratch folder (no worktree, nothing of this
checkout touched). Both trees run with this interpreter as `python -m cli.main ...` from
their own folder, so each imports its own code. The sample is published once, by this tree,
into a scratch AIRTIME_HOME both read (`airtime run --date 2026-11-30`, as `make run`).
Then each command runs --runs times, this tree and the baseline in turn, and the medians of
the wall times and the median of the pair-by-pair ratios are printed.

--without pandas: the bench and dev extras install pandas, the image does not, and DuckDB
imports it (with pyarrow and numpy) on the first bound parameter of a query when it is
there: about 0.15-0.3 s of a local query here. The option makes `import pandas` fail in
both trees' processes, as in the image.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_RUN_DATE = "2026-11-30"  # the bundled sample's delivery day (Makefile, run)
COMMANDS = {
    "--help": ["--help"],
    "query program (local)": ["query", "program", "--program", "BYRZ"],
}


def unpack(ref: str, into: Path) -> Path:
    """The tree of a git ref, as files (git archive: no worktree, no stash)."""
    archive = into / "baseline.tar"
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), ref], cwd=ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


# a finder ahead of the others that says the modules are not installed (a None in
# sys.modules is not the same: pyarrow's pandas shim then fails on it)
ABSENT = """import sys
class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {names!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Absent())
from cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def command(tree: Path, args: list[str], without: list[str]) -> tuple[list[str], Path]:
    if not without:
        return [sys.executable, "-m", "cli.main", *args], tree
    return [sys.executable, "-c", ABSENT.format(names=set(without)), *args], tree


def once(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="main", help="git ref to compare against (default main)")
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--without", action="append", default=[], metavar="MODULE",
                        help="make this module fail to import in both trees (e.g. pandas, as in the image)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as scratch:
        base = unpack(args.baseline, Path(scratch))
        env = {**os.environ, "AIRTIME_HOME": str(Path(scratch) / "home")}
        env.pop("PYTHONPATH", None)  # each tree imports its own code, from its folder
        subprocess.run([sys.executable, "-m", "cli.main", "run", "--date", SAMPLE_RUN_DATE], cwd=ROOT, env=env,
                       check=True, stdout=subprocess.DEVNULL)
        print(f"this tree against {args.baseline}, {args.runs} runs each, in turn"
              + (f"; without {', '.join(args.without)}" if args.without else ""))
        print(f"{'command':<24}{'this s':>9}{'base s':>9}{'ratio':>8}   (medians; ratio of pairs)")
        for name, words in COMMANDS.items():
            ours, theirs, ratios = [], [], []
            for tree in (ROOT, base):  # warm-up, not counted
                once(*command(tree, words, args.without), env)
            for _ in range(args.runs):
                ours.append(once(*command(ROOT, words, args.without), env))
                theirs.append(once(*command(base, words, args.without), env))
                ratios.append(ours[-1] / theirs[-1])
            print(f"{name:<24}{statistics.median(ours):>9.3f}{statistics.median(theirs):>9.3f}"
                  f"{statistics.median(ratios):>8.2f}   min {min(ours):.3f} / {min(theirs):.3f}")


if __name__ == "__main__":
    main()
