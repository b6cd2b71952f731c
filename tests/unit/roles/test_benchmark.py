"""slm.edge.benchmark: its llama_server pass-through stays complete, and the report's context sections."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "benchmark"
LLAMA_SERVER = ROOT / "roles" / "llama_server"
# llama_server defaults that are templates: the benchmark resolves these itself.
RESOLVED_BY_BENCHMARK = {
    "llama_server_bin",
    "llama_server_model_path",
    "llama_server_model_alias",
    "llama_server_model_draft_path",
}


def _load_cli():
    spec = importlib.util.spec_from_file_location("bench_report_cli", ROLE / "files" / "bench_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _llama_server_defaults():
    return yaml.safe_load((LLAMA_SERVER / "defaults" / "main.yml").read_text())


def _include_vars():
    tasks = yaml.safe_load((ROLE / "tasks" / "configuration.yml").read_text())
    block = next(t for t in tasks if "block" in t)["block"]
    include = next(t for t in block if "ansible.builtin.include_role" in t)
    assert include["ansible.builtin.include_role"]["name"] == "slm.edge.llama_server"
    return include["vars"]


def test_every_llama_server_variable_is_passed_through():
    """A variable added to llama_server must be added to the benchmark's include_role too."""
    assert sorted(_include_vars()) == sorted(_llama_server_defaults())


def test_include_vars_come_from_the_resolved_configuration():
    for name, value in _include_vars().items():
        assert value == "{{ __benchmark_server." + name + " }}"


def test_templated_llama_server_defaults_are_resolved_by_the_benchmark():
    templated = {k for k, v in _llama_server_defaults().items() if isinstance(v, str) and "{{" in v}
    assert templated <= RESOLVED_BY_BENCHMARK


def test_default_configurations_are_valid_llama_server_settings():
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    options = yaml.safe_load((LLAMA_SERVER / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"][
        "options"
    ]
    reserved = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["__benchmark_reserved_keys"]
    configs = defaults["benchmark_configurations"]
    assert [c["label"] for c in configs] == ["runbook", "collection"]
    for config in configs:
        for name, value in config["llama_server"].items():
            assert name in options, name
            assert name not in reserved, name
            if "choices" in options[name]:
                assert value in options[name]["choices"], (name, value)
    runbook, collection = (c["llama_server"] for c in configs)
    assert runbook == {
        "llama_server_replica_mode": "single",
        "llama_server_split_mode": "row",
        "llama_server_parallel": 1,
        "llama_server_flash_attn": "off",
    }
    assert collection["llama_server_parallel"] == "auto"
    assert collection["llama_server_flash_attn"] == "auto"
    assert collection["llama_server_replica_mode"] == "auto"


@pytest.fixture
def run_doc():
    return {
        "schema_version": 1,
        "host": "slm-1",
        "host_facts": {
            "distribution": "RedHat",
            "distribution_version": "9.4",
            "kernel": "5.14.0",
            "architecture": "x86_64",
            "processor_model": "Intel(R) Xeon(R) Platinum 8259CL",
            "processor_vcpus": 48,
            "memtotal_mb": 196608,
        },
        "llama_cpp": {
            "server_bin": "/opt/slm/llama.cpp/current/build/bin/llama-server",
            "version": ["version: 4942 (abc1234)", "built with cc for x86_64"],
        },
        "model": {
            "path": "/opt/slm/models/smollm2/smollm2-F16.gguf",
            "gguf": {
                "architecture": "llama",
                "quantization": "F16",
                "parameter_count": 1711376384,
                "size_bytes": 3422222080,
                "context_length": 8192,
            },
        },
        "gpu": {
            "present": True,
            "driver_version": "550.127.05",
            "gpus": [{"name": "Tesla T4", "memory_total_mib": 15360, "memory_bandwidth_gbps": 320}] * 4,
        },
        "roofline": {"memory_bandwidth_gbps": 320.0, "source": "slm.edge.gpu_info, one GPU", "limit_tps": 93.508},
        "llama_bench": {
            "argv": ["llama-bench", "-m", "m.gguf", "-p", "512", "-n", "128", "-o", "json"],
            "gen_tps": 40.0,
            "records": [
                {
                    "n_prompt": 512,
                    "n_gen": 0,
                    "avg_ts": 2500.5,
                    "stddev_ts": 10.0,
                    "n_threads": 24,
                    "n_gpu_layers": 99,
                    "backends": "CUDA",
                },
                {
                    "n_prompt": 0,
                    "n_gen": 128,
                    "avg_ts": 40.0,
                    "stddev_ts": 0.5,
                    "n_threads": 24,
                    "n_gpu_layers": 99,
                    "backends": "CUDA",
                },
            ],
        },
        "load": {
            "workloads": ["chatbot", "summarization"],
            "concurrency": [1, 4, 16],
            "requests_per_level": 32,
            "max_seconds_per_level": 120.0,
            "chatbot_max_tokens": 200,
            "summarization_max_tokens": 256,
        },
        "configurations": [
            {
                "label": "runbook",
                "description": "one process",
                "units": ["llama-bench-runbook@0"],
                "llama_server_args": ["--model m.gguf --parallel 1 --split-mode row"],
            },
            {
                "label": "collection",
                "description": "per GPU",
                "units": ["llama-bench-collection@0", "llama-bench-collection@1"],
                "llama_server_args": ["--parallel 4 --port 8190", "--parallel 4 --port 8191"],
            },
        ],
    }


def test_environment_lines(run_doc):
    text = "\n".join(_load_cli().environment_lines(run_doc))
    assert "- Host: slm-1 (RedHat 9.4, kernel 5.14.0, x86_64)" in text
    assert "48 vCPUs, 192.0 GiB memory" in text
    assert "- GPU: 4 x Tesla T4, 15360 MiB each, driver 550.127.05, 320 GB/s each" in text
    assert "version: 4942 (abc1234)" in text
    assert "llama F16, 1.71 B parameters, 3.42 GB, trained context 8192" in text
    assert "concurrency 1, 4, 16" in text
    assert "93.5 tok/s" in text


def test_environment_lines_cpu_without_roofline(run_doc):
    run_doc["gpu"] = {"present": False, "gpus": [], "reason": "no NVIDIA GPU"}
    run_doc["roofline"] = {"memory_bandwidth_gbps": None}
    run_doc["model"]["gguf"].update(parameter_count=115008, size_bytes=123136)
    text = "\n".join(_load_cli().environment_lines(run_doc))
    assert "- GPU: none (no NVIDIA GPU)" in text
    assert "set benchmark_memory_bandwidth_gbps" in text
    assert "115.01 K parameters, 123.14 kB" in text


def test_llama_bench_lines(run_doc):
    text = "\n".join(_load_cli().llama_bench_lines(run_doc))
    assert "| pp512 | 2500.5 | 10.0 | 24 | 99 | CUDA |" in text
    assert "| tg128 | 40.0 | 0.5 | 24 | 99 | CUDA |" in text
    assert "`llama-bench -m m.gguf -p 512 -n 128 -o json`" in text
    assert "reaches 43% of the single-stream roofline" in text
    assert _load_cli().llama_bench_lines({}) == []


def test_configuration_lines(run_doc):
    text = "\n".join(_load_cli().configuration_lines(run_doc))
    assert "- **runbook** (A, baseline): one process" in text
    assert "- **collection** (B): per GPU" in text
    assert "  - llama-bench-collection@1: `--parallel 4 --port 8191`" in text


def test_insert_context_goes_before_the_first_section(run_doc):
    cli = _load_cli()
    text = "# Title\n\nIntro.\n\n## runbook\n\ntable\n"
    out = cli.insert_context(text, run_doc)
    assert out.index("## Environment") < out.index("## llama-bench") < out.index("## Configurations")
    assert out.index("## Configurations") < out.index("## runbook")
    assert out.startswith("# Title\n\nIntro.\n\n## Environment")
    assert cli.insert_context("# Title\n", {}).startswith("# Title\n\n## Environment")


def test_report_cli_with_context(tmp_path, run_doc):
    level = {
        "workload": "chatbot",
        "concurrency": 1,
        "requests": 2,
        "success": 2,
        "errors": 0,
        "aggregate_output_tps": 10.0,
        "e2e_ms": {"p95": 100.0},
    }
    paths = []
    for label, agg in (("runbook", 10.0), ("collection", 25.0)):
        path = tmp_path / f"{label}.json"
        path.write_text(json.dumps({"config": {"label": label}, "levels": [dict(level, aggregate_output_tps=agg)]}))
        paths.append(str(path))
    context = tmp_path / "run.json"
    context.write_text(json.dumps(run_doc))
    out = tmp_path / "report.md"
    proc = subprocess.run(
        [sys.executable, str(ROLE / "files" / "bench_report.py"), "--context", str(context), "-o", str(out), *paths],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = out.read_text()
    assert report.index("## Environment") < report.index("## runbook") < report.index("## Side by side")
    assert "| chatbot | 1 | 10.0 | 25.0 | 2.50x |" in report
