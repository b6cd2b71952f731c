"""execution-environment.yml makes a build context with everything the playbooks need.

`ansible-builder create` writes the Containerfile and the dependency files;
building the image needs a container runtime and registries, which the test
hosts do not have (docs/awx.md), so the test stops at the build context, and
checks with `ansible-builder introspect` what slm.edge declares for any other
execution environment it is installed into (meta/execution-environment.yml).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EE_FILE = ROOT / "execution-environment.yml"
EE = yaml.safe_load(EE_FILE.read_text())
VERSION = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]


def _env() -> dict[str, str]:
    """No repo ansible.cfg: ansible-galaxy installs where it is told, as on a build host."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(args: list[str], cwd: Path) -> str:
    proc = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"{args}: {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Path:
    """The documented recipe, in a copy of the files the EE definition names."""
    work = tmp_path_factory.mktemp("ee")
    shutil.copy(EE_FILE, work / EE_FILE.name)
    for dep in ("python", "system"):
        (work / EE["dependencies"][dep]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / EE["dependencies"][dep], work / EE["dependencies"][dep])
    (tarball_src,) = [f["src"] for f in EE["additional_build_files"] if f["src"].endswith(".tar.gz")]
    out = (work / tarball_src).parent
    _run([str(BIN / "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(out), str(ROOT)], work)
    (out / f"slm-edge-{VERSION}.tar.gz").rename(work / tarball_src)
    _run(
        [
            str(BIN / "ansible-builder"),
            "create",
            "-f",
            str(work / EE_FILE.name),
            "-c",
            str(work / "context"),
            "--output-filename",
            "Containerfile",
        ],
        work,
    )
    return work / "context"


def test_definition_is_schema_3_with_an_overridable_base_image():
    assert EE["version"] == 3
    assert EE["images"]["base_image"]["name"]
    assert EE["dependencies"]["python_interpreter"]["python_path"].endswith("python3.11")


def test_containerfile_installs_ansible_collections_and_the_ssm_plugin(context):
    text = (context / "Containerfile").read_text()
    assert f'ARG EE_BASE_IMAGE="{EE["images"]["base_image"]["name"]}"' in text  # --build-arg EE_BASE_IMAGE=...
    assert "FROM $EE_BASE_IMAGE AS base" in text
    assert re.search(r'ARG ANSIBLE_INSTALL_REFS=".*ansible-core.*ansible-runner', text)
    assert "ansible-galaxy collection install" in text
    assert "install-from-bindep" in text
    assert "ARG SSM_PLUGIN_RPM_URL=" in text
    assert "session-manager-plugin --version" in text
    # the plugin goes in before the image drops to the unprivileged user
    assert text.index("session-manager-plugin") < text.index("USER 1000")


def test_python_requirements_have_boto3(context):
    reqs = (context / "_build" / "requirements.txt").read_text()
    names = {re.split(r"[<>=!~ \[;#]", line.strip())[0].lower() for line in reqs.splitlines() if line.strip()}
    assert {"boto3", "botocore"} <= names


def test_bindep_has_git_lfs_and_rsync(context):
    lines = [
        ln.split()[0] for ln in (context / "_build" / "bindep.txt").read_text().splitlines() if ln and ln[0] != "#"
    ]
    assert {"git", "git-lfs", "rsync"} <= set(lines)


def test_collections_cover_requirements_yml_and_slm_edge(context):
    built = yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]
    pinned = {c["name"]: c.get("version") for c in built if c.get("type") != "file"}
    wanted = {
        c["name"]: c.get("version", "*") for c in yaml.safe_load((ROOT / "requirements.yml").read_text())["collections"]
    }
    wanted.update(yaml.safe_load((ROOT / "galaxy.yml").read_text())["dependencies"])
    assert {"amazon.aws", "community.aws"} <= set(pinned)
    for name, constraint in wanted.items():
        assert name in pinned, f"{name} (requirements.yml / galaxy.yml) is not in the EE"
        if constraint != "*":
            assert Version(pinned[name]) in SpecifierSet(constraint), f"{name} {pinned[name]} vs {constraint}"

    (local,) = [c for c in built if c.get("type") == "file"]
    tarball = context / "_build" / local["name"]  # the galaxy stage installs from /build (= _build)
    assert tarball.is_file(), local
    with tarfile.open(tarball) as tar:
        manifest = json.load(tar.extractfile("MANIFEST.json"))["collection_info"]
        names = set(tar.getnames())
    assert (manifest["namespace"], manifest["name"], manifest["version"]) == ("slm", "edge", VERSION)
    for needed in (
        "meta/execution-environment.yml",
        "requirements/ee-python.txt",
        "bindep.txt",
        "playbooks/site.yml",
        "playbooks/awx_configure.yml",
        "roles/awx_config/tasks/main.yml",
        "awx/templates.yml",  # awx_config's data, found from the installed role (role_path/../../awx)
    ):
        assert needed in names, needed


def test_collection_declares_its_dependencies_for_other_ees(context, tmp_path):
    """ansible-builder finds boto3 and git-lfs through slm.edge's meta/execution-environment.yml."""
    meta = yaml.safe_load((ROOT / "meta" / "execution-environment.yml").read_text())
    assert (ROOT / meta["dependencies"]["python"]).is_file()
    assert (ROOT / meta["dependencies"]["system"]).is_file()
    tarball = next((context / "_build").rglob("slm-edge.tar.gz"))
    _run(
        [str(BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "-p", str(tmp_path), str(tarball)], tmp_path
    )
    found = yaml.safe_load(_run([str(BIN / "ansible-builder"), "introspect", "--sanitize", str(tmp_path)], tmp_path))
    python = " ".join(found["python"])
    system = " ".join(found["system"])
    assert "boto3" in python and "from collection slm.edge" in python
    assert "git-lfs" in system and "rsync" in system
