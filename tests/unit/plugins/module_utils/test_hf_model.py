"""roles/model/files/check_hf_model.py: the clear refusals before conversion."""

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "roles" / "model" / "files" / "check_hf_model.py"


def write_safetensors(path: Path, n_floats: int = 4, truncate: int = 0) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [n_floats], "data_offsets": [0, 4 * n_floats]}}).encode()
    data = struct.pack("<Q", len(header)) + header + b"\0" * (4 * n_floats)
    path.write_bytes(data[: len(data) - truncate] if truncate else data)


@pytest.fixture
def tree(tmp_path):
    """A fake llama.cpp tree whose converter registers two architectures."""
    src = tmp_path / "llama.cpp"
    (src / "conversion").mkdir(parents=True)
    (src / "convert_hf_to_gguf.py").write_text('@ModelBase.register("LlamaForCausalLM", "MistralForCausalLM")\n')
    (src / "conversion" / "qwen.py").write_text('@ModelBase.register("Qwen2ForCausalLM")\nclass Q: pass\n')
    return src


def make_model(tmp_path, arch="LlamaForCausalLM", tokenizer=True, truncate=0):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"architectures": [arch], "max_position_embeddings": 2048}))
    if tokenizer:
        (model / "tokenizer.model").write_bytes(b"sp")
    write_safetensors(model / "model.safetensors", truncate=truncate)
    return model


def check(model, tree):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(model), str(tree)], capture_output=True, text=True, check=False
    )
    return proc.returncode, json.loads(proc.stdout)


def test_good_model_passes(tmp_path, tree):
    rc, out = check(make_model(tmp_path), tree)
    assert rc == 0 and out["error"] == ""
    assert out["architectures"] == ["LlamaForCausalLM"] and out["context_length"] == 2048


def test_architecture_registered_in_conversion_package(tmp_path, tree):
    rc, _out = check(make_model(tmp_path, arch="Qwen2ForCausalLM"), tree)
    assert rc == 0


def test_unknown_architecture(tmp_path, tree):
    rc, out = check(make_model(tmp_path, arch="FancyNewForCausalLM"), tree)
    assert rc == 1
    assert "FancyNewForCausalLM" in out["error"] and "not supported" in out["error"]


def test_missing_tokenizer(tmp_path, tree):
    rc, out = check(make_model(tmp_path, tokenizer=False), tree)
    assert rc == 1 and "no tokenizer" in out["error"]


def test_truncated_weights(tmp_path, tree):
    rc, out = check(make_model(tmp_path, truncate=3), tree)
    assert rc == 1
    assert out["error"].startswith("corrupted weights: model.safetensors")


def test_not_a_model_directory(tmp_path, tree):
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, out = check(empty, tree)
    assert rc == 1 and "no config.json" in out["error"]
