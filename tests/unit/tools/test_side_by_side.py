"""tests/gpu/side_by_side.py renders the llama_server role's argv for the benchmark configurations without Ansible."""

import importlib.util
import itertools
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
SPEC = importlib.util.spec_from_file_location("side_by_side", ROOT / "tests" / "gpu" / "side_by_side.py")
side_by_side = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(side_by_side)
side_by_side.collection()

SMOLLM2 = {
    "block_count": 24,
    "head_count": 32,
    "head_count_kv": 32,
    "embedding_length": 2048,
    "context_length": 8192,
    "size_bytes": 3_422_000_000,
}
H200 = {"present": True, "gpus": [{"index": 0, "name": "NVIDIA H200", "memory_total_mib": 143771}]}
CPU = {"present": False, "gpus": [], "reason": "no NVIDIA GPU"}
CONFIGURATIONS = yaml.safe_load((ROOT / "roles" / "benchmark" / "defaults" / "main.yml").read_text())[
    "benchmark_configurations"
]


def rendered(configuration, index, gpu):
    instances, plan = side_by_side.argv_for(
        configuration, index, bins=Path("/b"), gguf_path=Path("/m.gguf"), gguf=SMOLLM2, gpu=gpu, port=18400
    )
    assert len(instances) == 1
    argv = instances[0]["argv"]
    # Each option with the word after it (flags without a value map to the next option: unused).
    return dict(itertools.pairwise(argv[1:])), argv, plan


def test_runbook_on_one_gpu_is_the_runbooks_command_line():
    options, argv, plan = rendered(CONFIGURATIONS[0], 0, H200)
    assert argv[0] == "/b/llama-server"
    assert options["--model"] == "/m.gguf"
    assert options["--port"] == "18400"
    assert options["--parallel"] == "1"
    assert options["--split-mode"] == "row"
    assert options["--flash-attn"] == "off"
    assert options["--n-gpu-layers"] == "999"
    assert plan["parallel"] == 1


def test_defaults_on_one_h200_size_sixteen_slots_from_the_kv_cache():
    options, argv, plan = rendered(CONFIGURATIONS[1], 1, H200)
    assert options["--port"] == "18410"
    assert options["--parallel"] == "16"
    assert plan["parallel"] == 16
    # Each slot holds the role's prompt plus n_predict (1536 + 512), the context is all slots.
    assert options["--ctx-size"] == str(16 * 2048)
    assert options["--flash-attn"] == "auto"
    assert "--metrics" in argv
    assert "--api-key-file" not in argv


def test_defaults_on_a_cpu_host_keep_the_model_in_ram():
    options, _argv, plan = rendered(CONFIGURATIONS[1], 1, CPU)
    assert options["--n-gpu-layers"] == "999"
    assert 1 <= plan["parallel"] <= 8
    assert "host RAM" in " ".join(plan["reasons"])


def test_the_report_section_is_replaced_in_place_and_per_kind_of_host(tmp_path):
    docs = tmp_path / "benchmarks.md"
    gpu_begin, gpu_end = side_by_side.BEGIN.format(kind="GPU"), side_by_side.END.format(kind="GPU")
    cpu_begin = side_by_side.BEGIN.format(kind="CPU")
    docs.write_text(f"# Benchmarks\n\nbefore\n\n{gpu_begin}\nold\n{gpu_end}\n\nafter\n")
    side_by_side.write_docs(docs, "# Title\n\n## Results\n\nnew table\n", "GPU")
    text = docs.read_text()
    assert "old" not in text
    assert "### Title" in text
    assert "#### Results" in text
    assert text.index("before") < text.index("new table") < text.index("after")
    side_by_side.write_docs(docs, "# Title\n\nagain\n", "GPU")
    assert docs.read_text().count(gpu_begin) == 1
    # A CPU run gets its own section and leaves the GPU figures alone.
    side_by_side.write_docs(docs, "# CPU run\n\ncpu table\n", "CPU")
    text = docs.read_text()
    assert text.count(cpu_begin) == 1
    assert "again" in text
    assert "cpu table" in text
