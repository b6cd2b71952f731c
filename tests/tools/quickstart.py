"""The collection's main job on a local default, in one command (make quickstart).

1. makes the offline fixtures (llama.cpp tree from PyPI's llama-cpp-python, a
   tiny random-weight Llama) unless SLM_MODEL_REPO names a Hugging Face model;
2. creates (or reuses) the local systemd-nspawn host ``slm-local`` with an 8 GiB
   data disk and writes inventories/local/hosts.yml;
3. runs playbooks/site.yml on it (CPU backend);
4. asks the service a question and prints the chat completion.

Remove the host with ``make local-host-rm``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOST = os.environ.get("SLM_LOCAL_HOST", "slm-local")
INVENTORY = ROOT / "inventories" / "local" / "hosts.yml"
PORT = 8080


def sh(*cmd: str) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def main() -> int:
    extra: list[str] = []
    repo = os.environ.get("SLM_MODEL_REPO", "")
    sh(sys.executable, "tests/fixtures/llama_src.py")
    if repo:
        extra = [
            "-e",
            json.dumps(
                {
                    "model_source": "hf",
                    "model_hf_repo": repo,
                    "model_name": repo.split("/")[-1],
                    "model_hf_revision": os.environ.get("SLM_MODEL_REVISION", "main"),
                    "model_quantizations": ["Q8_0"],
                    "llama_server_ctx_size": 0,
                    "model_min_free_mb": 4096,
                }
            ),
        ]
    else:
        sh(sys.executable, "tests/fixtures/tiny_model.py")
    sh(
        "python3",
        "tests/harness/nspawn.py",
        "up",
        HOST,
        "--disk",
        "data:8G",
        "--bind-ro",
        "/var/cache/slm-edge-test/fixtures:/srv/fixtures",
        "--inventory",
        str(INVENTORY),
    )
    started = time.monotonic()
    sh("ansible-playbook", "-i", str(INVENTORY), "playbooks/site.yml", *extra)
    print(f"site.yml took {time.monotonic() - started:.0f}s", flush=True)
    body = json.dumps(
        {
            "messages": [
                {"role": "system", "content": "You are a helpful assistant"},
                {"role": "user", "content": "Hello"},
            ],
            "temperature": 0,
            "seed": 42,
            "max_tokens": 48,
        }
    ).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{PORT}/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=120) as resp:
        answer = json.loads(resp.read())
    print("\nchat completion from llama-server on", HOST)
    print(
        json.dumps(
            {"model": answer.get("model"), "message": answer["choices"][0]["message"], "usage": answer.get("usage")},
            indent=2,
        )
    )
    print("\n(the tiny test model has random weights: the text is noise, the service is real)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
