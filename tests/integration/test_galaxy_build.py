"""The published artifact works: build the collection, install it elsewhere, resolve from it."""

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    subprocess.run(
        [BIN / "ansible-galaxy", "collection", "build", "--output-path", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    tarball = out / f"slm-edge-{version}.tar.gz"
    assert tarball.exists()
    return tarball


def test_tarball_has_the_collection_and_no_caches(built):
    with tarfile.open(built) as tar:
        names = tar.getnames()
    for needed in (
        "MANIFEST.json",
        "roles/llama_server/tasks/main.yml",
        "playbooks/site.yml",
        "plugins/modules/gguf_info.py",
        "meta/runtime.yml",
    ):
        assert needed in names, needed
    forbidden = (".venv", ".collections", ".cache", ".git/", "tests/output", "__pycache__")
    assert not [n for n in names if any(part in n for part in forbidden)]
    size_mib = built.stat().st_size / 2**20
    assert size_mib < 5, f"collection tarball is {size_mib:.1f} MiB"


def test_installed_copy_resolves_roles_playbooks_and_modules(built, tmp_path):
    dest = tmp_path / "collections"
    # Outside the checkout: no repo ansible.cfg, only the installed copy (plus the ansible package's collections).
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["ANSIBLE_COLLECTIONS_PATH"] = str(dest)
    subprocess.run(
        [BIN / "ansible-galaxy", "collection", "install", "--force", "--no-deps", "-p", str(dest), str(built)],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    installed = dest / "ansible_collections" / "slm" / "edge"
    assert (installed / "roles" / "llama_cpp" / "meta" / "argument_specs.yml").exists()
    play = tmp_path / "uses_role.yml"
    play.write_text("- hosts: localhost\n  gather_facts: false\n  roles:\n    - slm.edge.llama_server\n")
    for args in (
        ["ansible-playbook", "--syntax-check", "-i", "localhost,", "slm.edge.site"],
        ["ansible-playbook", "--syntax-check", "-i", "localhost,", str(play)],
        ["ansible-doc", "slm.edge.gguf_info"],
        ["ansible-doc", "-t", "role", "slm.edge.llama_cpp"],
    ):
        proc = subprocess.run(
            [str(BIN / args[0]), *args[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, f"{args}: {proc.stdout[-1500:]} {proc.stderr[-1500:]}"
        if args[0] == "ansible-doc":
            assert str(installed) in proc.stdout or "slm.edge" in proc.stdout
