"""The side-by-side CPU benchmark on this machine, in one command (outside CI).

    python tests/tools/cpu_bench.py [--rounds 3] [--concurrency 1 8] [--keep]
                                    [--artifacts DIR] [--out .cache/cpu-bench]

Makes the ``bench`` generated Llama (tests/fixtures/tiny_model.py --shape bench: 8 layers of
width 512, about 24M parameters) and converts it to an f16 GGUF on the controller, boots the
nspawn host slm-bench (port 18980), deploys it with playbooks/site.yml (llama.cpp from
``--artifacts``, an artifact store a fleet run left, when given; the model quantized to
Q8_0, and its 1-layer draft ``bench-draft`` through model_draft), then runs playbooks/benchmark.yml
with the role's default configurations (the runbook's command line against the collection's
defaults), the defaults with a q8_0 KV cache and the defaults with speculative decoding
(``--options``), in alternating rounds, and prints the report.
Load goes to 127.0.0.1 only, bounded in requests and seconds per level. Takes 20 to 30 minutes
on 2 cores; run it on a quiet machine, the figures are only as steady as the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("SLM_TEST_CACHE", "/var/cache/slm-edge-test"))
FIXTURES = CACHE / "fixtures"
HOST = "slm-bench"
PORT = 18980


DRAFT = "/opt/slm/models/bench-llama-draft/bench-llama-draft-Q8_0.gguf"


def configurations(options: list[str]) -> list[dict]:
    """The benchmark role's default configurations, then its last one with each option asked for.

    kv-q8: a q8_0 KV cache (-ctk q8_0 -ctv q8_0); draft: speculative decoding with the 1-layer
    bench-draft Llama (deployed by slm.edge.model's model_draft). Only the draft configuration drafts.
    """
    defaults = yaml.safe_load((ROOT / "roles" / "benchmark" / "defaults" / "main.yml").read_text())
    ours = [
        {**c, "llama_server": {**c["llama_server"], "llama_server_model_draft_path": ""}}
        for c in defaults["benchmark_configurations"]
    ]
    variants = {
        "kv-q8": (
            "The defaults with a q8_0 KV cache (-ctk q8_0 -ctv q8_0)",
            {"llama_server_cache_type_k": "q8_0", "llama_server_cache_type_v": "q8_0"},
        ),
        "draft": (
            "The defaults with speculative decoding: the 1-layer bench-draft Llama (Q8_0) drafts",
            {"llama_server_model_draft_path": DRAFT},
        ),
    }
    return [
        *ours,
        *(
            {
                "label": name,
                "description": variants[name][0],
                "llama_server": {**ours[-1]["llama_server"], **variants[name][1]},
            }
            for name in options
        ),
    ]


def sh(*cmd: str, **kwargs) -> subprocess.CompletedProcess:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, cwd=ROOT, **kwargs)


def bench_gguf(shape: str = "bench") -> Path:
    """A generated Llama (bench, or its bench-draft) as an f16 GGUF, converted once with the real converter."""
    sh(sys.executable, "tests/fixtures/llama_src.py")
    sh(sys.executable, "tests/fixtures/tiny_model.py", "--shape", shape)
    out = FIXTURES / f"{shape}-llama-gguf" / f"{shape}-llama-f16.gguf"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        converter = sorted(FIXTURES.glob("llama.cpp-*/convert_hf_to_gguf.py"))[0]
        partial = out.with_name(f".{out.name}.partial")
        sh(
            str(CACHE / "fixture-venv" / "bin" / "python"),
            str(converter),
            "--outtype",
            "f16",
            "--outfile",
            str(partial),
            str(FIXTURES / f"{shape}-llama"),
            stdout=subprocess.DEVNULL,
        )
        partial.rename(out)
    return out.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--requests", type=int, default=16, help="requests per level")
    parser.add_argument("--seconds", type=int, default=45, help="most seconds per level")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument(
        "--workloads", nargs="+", default=["chatbot", "summarization"], choices=["chatbot", "summarization"]
    )
    parser.add_argument("--artifacts", type=Path, help="a llama.cpp artifact store to install from")
    parser.add_argument(
        "--options",
        nargs="*",
        default=["kv-q8", "draft"],
        choices=["kv-q8", "draft"],
        help="configurations measured besides the runbook and the defaults",
    )
    parser.add_argument("--out", type=Path, default=ROOT / ".cache" / "cpu-bench")
    parser.add_argument("--keep", action="store_true", help="leave the host running afterwards")
    args = parser.parse_args(argv)

    model_dir = bench_gguf()
    draft_dir = bench_gguf("bench-draft")
    work = args.out / "inventory"
    shutil.rmtree(work, ignore_errors=True)
    (work / "host_vars").mkdir(parents=True)
    (work / "group_vars").symlink_to(ROOT / "inventories" / "local" / "group_vars")
    harness = [sys.executable, "tests/harness/nspawn.py"]
    sh(
        *harness,
        "up",
        HOST,
        "--disk",
        "data:4G",
        "--bind-ro",
        f"{FIXTURES}:/srv/fixtures",
        "--inventory",
        str(work / "hosts.yml"),
    )
    deploy = {
        "model_name": "bench-llama",
        "model_local_path": str(model_dir),
        "llama_server_n_predict": args.max_tokens,
        # The draft goes through slm.edge.model like the served model; site.yml serves without it.
        "model_draft": {
            "name": "bench-llama-draft",
            "source": "local",
            "local_path": str(draft_dir),
            "quantizations": ["Q8_0"],
        },
        "llama_server_model_draft_path": "",
    }
    if args.artifacts:
        deploy["llama_cpp_artifact_dir"] = str(args.artifacts)
    # In the inventory, not as extra vars: model_* extra vars would apply to the draft too (the
    # model role refuses them with model_draft).
    (work / "host_vars" / f"{HOST}.yml").write_text(
        "---\n" + yaml.safe_dump({"llama_server_port": PORT, **deploy}, sort_keys=False)
    )
    sh("ansible-playbook", "-i", str(work / "hosts.yml"), "playbooks/site.yml")
    results = args.out / "results"
    shutil.rmtree(results, ignore_errors=True)
    load = {
        "benchmark_output_dir": str(results),
        "benchmark_port": PORT + 100,
        "benchmark_rounds": args.rounds,
        "benchmark_concurrency": args.concurrency,
        "benchmark_workloads": args.workloads,
        "benchmark_requests_per_level": args.requests,
        "benchmark_max_seconds_per_level": args.seconds,
        "benchmark_chatbot_max_tokens": args.max_tokens,
        "benchmark_summarization_max_tokens": args.max_tokens,
        "benchmark_llama_bench_prompt_tokens": 128,
        "benchmark_llama_bench_gen_tokens": 64,
        "benchmark_title": "CPU: generated 24M-parameter Llama (Q8_0), runbook vs collection defaults",
        "benchmark_configurations": configurations(args.options),
    }
    try:
        sh("ansible-playbook", "-i", str(work / "hosts.yml"), "playbooks/benchmark.yml", "-e", json.dumps(load))
    finally:
        if not args.keep:
            subprocess.run([*harness, "destroy", HOST], check=False, cwd=ROOT)
    report = results / HOST / "report.md"
    if report.exists():
        print(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
