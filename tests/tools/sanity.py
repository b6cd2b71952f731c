"""Run `ansible-test sanity` for this collection, offline and without containers.

ansible-test wants the collection at .../ansible_collections/<namespace>/<name>
inside a version-controlled tree, so this script

1. writes the offline stand-in for the get-pip bootstrap script that
   ansible-test would otherwise download (see docs: CONVENTIONS.md,
   "Known obstacles"): it runs ensurepip, then `pip install --cert <CA bundle>`;
2. copies the files git knows about (tracked plus untracked, not ignored) to
   a temporary ansible_collections/<namespace>/<name> tree and runs
   `git init && git add -A` there;
3. runs `ansible-test sanity --venv --python <version>` with any extra
   arguments given (`--test pylint`, file paths, ...), and exits with its status.

Usage:
    .venv/bin/python tests/tools/sanity.py                 # whole collection, all tests
    .venv/bin/python tests/tools/sanity.py --test pylint plugins/modules/gpu_info.py
    .venv/bin/python tests/tools/sanity.py --keep          # keep the temporary tree
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
DEFAULT_PIP_VERSION = "24.2"
# Never copied: the virtualenv, the self-referencing collections path, caches, test output.
EXCLUDE_TOP = {".venv", ".collections", ".git", ".cache", ".ruff_cache", ".pytest_cache", "build", ".whl", ".devtree"}

GET_PIP_STANDIN = '''"""Offline stand-in for get-pip.py: ensurepip, then pip install the requested packages."""
import ensurepip
import subprocess
import sys

ensurepip.bootstrap()
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--cert", "{ca}"] + args))
'''


def galaxy_name(root):
    """(namespace, name) from galaxy.yml, read without a YAML dependency."""
    text = (root / "galaxy.yml").read_text()
    values = dict(re.findall(r"^(namespace|name):\s*['\"]?([\w]+)", text, re.MULTILINE))
    return values["namespace"], values["name"]


def pip_version():
    """The pip version ansible-test bootstraps (it names the cached get-pip file after it)."""
    spec = importlib.util.find_spec("ansible_test")
    if spec and spec.submodule_search_locations:
        source = Path(next(iter(spec.submodule_search_locations))) / "_internal" / "python_requirements.py"
        if source.is_file():
            match = re.search(r"pip='([\d.]+)'", source.read_text())
            if match:
                return match.group(1)
    return DEFAULT_PIP_VERSION


def ensure_get_pip_standin():
    cache = Path.home() / ".ansible" / "test" / "cache" / f"get_pip_{pip_version().replace('.', '_')}.py"
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(GET_PIP_STANDIN.replace("{ca}", CA_BUNDLE))
        print(f"sanity: wrote get-pip stand-in {cache}")
    return cache


def source_files(root):
    """Relative paths of the files to copy: git's view when available, else a filtered walk."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            check=True,
            capture_output=True,
        ).stdout
        paths = [p for p in out.decode().split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        paths = []
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = Path(dirpath).relative_to(root)
            dirnames[:] = [d for d in dirnames if not (rel_dir == Path(".") and d in EXCLUDE_TOP)]
            dirnames[:] = [d for d in dirnames if d not in ("__pycache__", "output")]
            paths.extend(str(rel_dir / f) for f in filenames if not f.endswith(".pyc"))
    keep = []
    for rel in paths:
        parts = Path(rel).parts
        if parts[0] in EXCLUDE_TOP or "__pycache__" in parts or rel.startswith("tests/output/"):
            continue
        keep.append(rel)
    return keep


def make_tree(root, base):
    namespace, name = galaxy_name(root)
    dest = base / "ansible_collections" / namespace / name
    dest.mkdir(parents=True)
    for rel in source_files(root):
        src = root / rel
        if not (src.is_file() or src.is_symlink()):
            continue  # deleted in the working tree but still in the index
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), target)
        else:
            shutil.copy2(src, target)
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1")
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True, env=env)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True, env=env)
    return dest


def ansible_test_bin():
    local = Path(sys.executable).parent / "ansible-test"
    return str(local) if local.exists() else shutil.which("ansible-test") or "ansible-test"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument(
        "--python", default="{}.{}".format(*sys.version_info[:2]), help="target Python (default: this one)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary collection tree")
    args, extra = parser.parse_known_args(argv)

    ensure_get_pip_standin()
    base = Path(tempfile.mkdtemp(prefix="slm-edge-sanity-"))
    try:
        dest = make_tree(ROOT, base)
        command = [ansible_test_bin(), "sanity", "--venv", "--python", args.python, "--color", "no", *extra]
        print(f"sanity: in {dest}: {' '.join(command)}", flush=True)
        env = dict(os.environ)
        env.pop("ANSIBLE_CONFIG", None)  # the repo's config points at ./.collections, not at the copy
        return subprocess.run(command, cwd=dest, env=env, check=False).returncode
    finally:
        if args.keep:
            print(f"sanity: kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
