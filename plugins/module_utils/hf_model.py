# -*- coding: utf-8 -*-
# Copyright (c) slm.edge contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""Checks of a Hugging Face model before it is downloaded or converted (stdlib only).

The logic of the slm.edge.hf_model_info module, no Ansible imports:

* ``check_model_dir``: a downloaded model directory before conversion: config.json, an architecture the
  llama.cpp converter registers, tokenizer files, complete safetensors files;
* ``model_info_url``, ``hub_summary`` and ``hub_error``: the hub's model-info API for one repository at one
  revision, and a message for every refusal it gives (the token is never part of a URL or a message).
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from urllib.parse import quote

TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json")
REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
MAX_HEADER = 100 * 1024 * 1024


def supported_architectures(src):
    """Architectures the converter of the llama.cpp tree ``src`` registers (empty when it has none)."""
    src = Path(src)
    found = set()
    files = [src / "convert_hf_to_gguf.py", *sorted((src / "conversion").glob("*.py"))]
    pattern = re.compile(r"register\(([^)]*)\)")
    for path in files:
        if path.is_file():
            for args in pattern.findall(path.read_text(errors="replace")):
                found.update(re.findall(r"\"([A-Za-z0-9_]+)\"", args))
    return found


def check_safetensors(path):
    """Empty when the safetensors file is complete, else what is wrong with it."""
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            return f"{path.name}: truncated (only {size} bytes)"
        (length,) = struct.unpack("<Q", head)
        if length <= 0 or length > MAX_HEADER or 8 + length > size:
            return f"{path.name}: corrupted header (declared header length {length}, file size {size})"
        try:
            header = json.loads(handle.read(length))
        except ValueError as exc:
            return f"{path.name}: corrupted header ({exc})"
    if not isinstance(header, dict):
        return f"{path.name}: corrupted header (not a JSON object)"
    try:
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    except (KeyError, IndexError, TypeError):
        return f"{path.name}: corrupted header (a tensor without data_offsets)"
    if 8 + length + end != size:
        return f"{path.name}: tensor data is {size - 8 - length} bytes, header says {end}: truncated or corrupted"
    return ""


def check_model_dir(model_dir, source_dir=""):
    """What the converter will find in ``model_dir``; ``error`` is empty when it can convert it."""
    model = Path(model_dir)
    result = {"model_dir": str(model), "architectures": [], "context_length": None, "weights": [], "error": ""}
    config_path = model / "config.json"
    if not config_path.is_file():
        result["error"] = f"{model} has no config.json: not a Hugging Face model directory"
        return result
    try:
        config = json.loads(config_path.read_text())
    except ValueError as exc:
        result["error"] = f"{config_path} is not JSON ({exc})"
        return result
    if not isinstance(config, dict):
        result["error"] = f"{config_path} is not a JSON object"
        return result
    archs = config.get("architectures") or []
    result["architectures"] = archs
    result["context_length"] = config.get("max_position_embeddings")
    known = supported_architectures(source_dir) if source_dir else set()
    if not archs or (known and archs[0] not in known):
        result["error"] = (
            f"architecture {archs[:1]} is not supported by this llama.cpp's convert_hf_to_gguf.py "
            f"({len(known)} known): upgrade llama_cpp_version or provide a ready GGUF"
        )
        return result
    if not any((model / name).is_file() for name in TOKENIZER_FILES):
        result["error"] = f"{model} has no tokenizer ({' or '.join(TOKENIZER_FILES)}): copy the tokenizer files too"
        return result
    weights = sorted(model.glob("*.safetensors"))
    result["weights"] = [w.name for w in weights]
    if not weights and not list(model.glob("*.bin")):
        result["error"] = f"{model} has no weights (*.safetensors or *.bin)"
        return result
    for weight in weights:
        problem = check_safetensors(weight)
        if problem:
            result["error"] = "corrupted weights: " + problem
            break
    return result


def check_repo(repo):
    """Empty when ``repo`` looks like owner/name, else the problem."""
    if not REPO_RE.match(repo or ""):
        return f"repo={repo!r} is not a repository name such as Qwen/Qwen2.5-0.5B-Instruct (owner/name)"
    return ""


def model_info_url(endpoint, repo, revision):
    """The model-info API URL of ``repo`` at ``revision`` (a branch, tag or commit)."""
    return f"{endpoint.rstrip('/')}/api/models/{repo}/revision/{quote(revision, safe='')}"


def hub_summary(data, repo, revision):
    """The facts of a model-info answer that the role needs."""
    files = sorted(s.get("rfilename", "") for s in data.get("siblings") or [] if isinstance(s, dict))
    return {
        "repo": data.get("id") or data.get("modelId") or repo,
        "revision": revision,
        "sha": data.get("sha") or "",
        "private": bool(data.get("private", False)),
        "gated": data.get("gated") or False,
        "disabled": bool(data.get("disabled", False)),
        "files": files,
        "has_config": "config.json" in files,
        "has_tokenizer": any(name in files for name in TOKENIZER_FILES),
        "weights": [f for f in files if f.endswith((".safetensors", ".bin", ".gguf"))],
    }


def hub_error(status, error_code, message, *, repo, revision, token_given):
    """A sentence for a refusal of the model-info API; never contains the token."""
    where = f"{repo} at revision {revision}"
    code = (error_code or "").strip()
    detail = f" (the hub says: {message.strip()[:200]})" if message and message.strip() else ""
    if status == -1 or status is None:
        return f"the hub could not be reached for {where}{detail}: check model_hf_endpoint and the host's network"
    if code == "GatedRepo" or (status == 403 and token_given):
        return (
            f"{repo} is gated and this token has no access to it{detail}: accept the model's terms on its page "
            "with the account of model_hf_token, or use a token of an account that has"
        )
    if code == "RevisionNotFound":
        return f"{repo} has no revision {revision}{detail}: fix model_hf_revision (a branch, tag or commit)"
    if code == "RepoNotFound" or status in (401, 404):
        if status == 401 and token_given:
            return f"the token was refused for {where}{detail}: model_hf_token is invalid or expired"
        hint = "" if token_given else "; a private or gated repository also needs model_hf_token"
        return f"{repo} was not found on the hub{detail}: fix model_hf_repo{hint}"
    if status == 403:
        return f"the hub refused {where} (HTTP 403){detail}: set model_hf_token to a token that may read it"
    return f"the hub answered HTTP {status} for {where}{detail}"
