"""One helm: the version .ci/install-tools pins is the one the chart tests run and the one
Cloud Build's render and deploy steps give Skaffold, whose image ships its own helm 3.17.3
(skaffold v2.24.0 deploy/skaffold/Dockerfile.deps)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
INSTALL_TOOLS = ROOT / ".ci" / "install-tools"
PINNED_HELM_DIR = "bash .ci/install-tools --pinned-helm-dir"


def pinned_version() -> str:
    [version] = re.findall(r'^HELM_VERSION="(v[0-9.]+)"$', INSTALL_TOOLS.read_text(), re.MULTILINE)
    return version


def steps() -> dict[str, dict]:
    return {s["id"]: s for s in yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())["steps"]}


def lines(step: dict) -> list[str]:
    return [line.strip() for line in step.get("script", "").splitlines()]


def needs(step_id: str, ancestor: str) -> bool:
    """True when step_id runs after ancestor (waitFor, transitively)."""
    wait = steps()[step_id].get("waitFor", [])
    return ancestor in wait or any(needs(w, ancestor) for w in wait if w != "-")


def test_helm_is_pinned_in_one_place() -> None:
    assert re.fullmatch(r"v4\.\d+\.\d+", pinned_version())
    for path in ("cloudbuild.yaml", "skaffold.yaml", "Makefile"):
        assert pinned_version() not in (ROOT / path).read_text(), f"{path} repeats the pin"


def test_every_skaffold_step_that_runs_helm_puts_the_pinned_helm_first_on_its_path() -> None:
    helm_steps = {i: s for i, s in steps().items()
                  if any(re.search(r"\bskaffold (render|deploy|run)\b", line) for line in lines(s))}
    assert set(helm_steps) == {"render", "deploy"}
    for step_id, step in helm_steps.items():
        body = lines(step)
        pin = body.index(f'PATH="$({PINNED_HELM_DIR}):$PATH"  # the helm the tests use'
                         if step_id == "deploy" else f'PATH="$({PINNED_HELM_DIR}):$PATH"')
        first_skaffold = next(n for n, line in enumerate(body) if re.search(r"\bskaffold (render|deploy)\b", line))
        assert pin < first_skaffold, step_id
        assert needs(step_id, "install"), f"{step_id} may start before install put helm in .tools"


def test_the_install_step_installs_the_pinned_helm_into_the_workspace() -> None:
    assert "bash .ci/install-tools" in lines(steps()["install"])


def test_the_skaffold_image_supports_helm_4() -> None:
    # Helm 4 support (the post-renderer as a plugin) came with skaffold v2.17.0 (#9892)
    image = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())["substitutions"]["_SKAFFOLD_IMAGE"]
    major, minor, _ = (int(x) for x in image.rsplit(":v", 1)[1].split("."))
    assert (major, minor) >= (2, 17), image


def test_pinned_helm_dir_refuses_a_helm_of_another_version(tmp_path) -> None:
    fake = tmp_path / "helm" / "helm"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho v3.17.3+ge4da497\n")  # what the Skaffold image ships
    fake.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "AIRTIME_TOOLS_DIR": str(tmp_path)}
    proc = subprocess.run(["bash", str(INSTALL_TOOLS), "--pinned-helm-dir"], env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert f"v3.17.3+ge4da497, not the pinned {pinned_version()}" in proc.stderr
    fake.write_text(f"#!/bin/sh\necho {pinned_version()}+g05fa379\n")
    proc = subprocess.run(["bash", str(INSTALL_TOOLS), "--pinned-helm-dir"], env=env, capture_output=True, text=True)
    assert (proc.returncode, proc.stdout.strip()) == (0, str(fake.parent))
