"""Bytecode cache for Ansible modules in the test machines (tests/connection_plugins/slm_nspawn.py).

An Ansible module reaches the machine as a zip (AnsiballZ) that Python imports with zipimport,
which keeps no bytecode: every task compiles ansible.module_utils (basic.py and the rest) again,
Python 3.9-3.12 compile each file twice (find_spec and exec_module), and that is about a quarter
of the CPU a task costs in these machines. This caches the compiled code by a hash of the source,
its path inside the zip and the interpreter's cache tag, in a root-only folder of the machine, as
Python does for any file on disk; the code run is the same. Module arguments are not in the zip
(they come on stdin), so nothing a task is given is written here.

Only the module's own interpreter loads this (the connection puts this folder in PYTHONPATH for
that process); PYTHONPATH is removed again at once, so what a module starts does not inherit it.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
import zipimport

CACHE_DIR = "/var/cache/slm-test-ansiballz"
_TAG = (sys.implementation.cache_tag or "").encode()


def _renamed(code, filename: str):
    """code with filename (the zip path of this run) as its file name, nested code included."""
    consts = tuple(_renamed(c, filename) if isinstance(c, type(code)) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _install() -> None:
    original = getattr(zipimport, "_compile_source", None)
    if original is None or not _TAG:
        return

    def compile_cached(pathname: str, source: bytes):
        inner = pathname.split(".zip" + os.sep, 1)[-1]
        key = hashlib.sha256(b"\0".join((_TAG, inner.encode(), source))).hexdigest()
        path = os.path.join(CACHE_DIR, key)
        try:
            with open(path, "rb") as cached:
                return _renamed(marshal.loads(cached.read()), pathname)
        except (OSError, ValueError, EOFError, TypeError):
            pass
        code = original(pathname, source)
        try:
            os.makedirs(CACHE_DIR, mode=0o700, exist_ok=True)
            tmp = f"{path}.{os.getpid()}"
            with open(tmp, "wb") as out:
                out.write(marshal.dumps(code))
            os.replace(tmp, path)
        except OSError:
            pass
        return code

    zipimport._compile_source = compile_cached


os.environ.pop("PYTHONPATH", None)
_install()
