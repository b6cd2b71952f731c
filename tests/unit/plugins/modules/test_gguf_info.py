"""Module-level tests for slm.edge.gguf_info."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ansible_module_runner import run_module

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gguf_writer as gw
from ansible_collections.slm.edge.plugins.modules import gguf_info


@pytest.mark.parametrize("check_mode", [False, True])
def test_reads_a_llama_model(tmp_path, check_mode):
    path = gw.llama_writer(context_length=2048).write(tmp_path / "tiny-q8_0.gguf")
    result = run_module(gguf_info.main, {"path": str(path)}, check_mode=check_mode)
    assert result["changed"] is False
    info = result["gguf"]
    assert info["path"] == str(path)
    assert info["architecture"] == "llama"
    assert info["context_length"] == 2048
    assert info["block_count"] == 2
    assert info["quantization"] == "Q8_0"
    assert info["file_type_name"] == "MOSTLY_Q8_0"
    assert info["tensor_types"] == {"Q8_0": 1, "F16": 1, "F32": 1}
    assert info["has_chat_template"] is True
    assert info["vocab_size"] == 1000
    assert info["metadata"]["tokenizer.ggml.tokens"] == 1000


def test_missing_file(tmp_path):
    missing = tmp_path / "absent.gguf"
    result = run_module(gguf_info.main, {"path": str(missing)}, expect_failure=True)
    assert result["msg"] == f"GGUF file not found: {missing}"


def test_directory(tmp_path):
    result = run_module(gguf_info.main, {"path": str(tmp_path)}, expect_failure=True)
    assert result["msg"] == f"{tmp_path} is a directory, not a GGUF file"


def test_bad_magic(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"\x00\x01\x02\x03 not a model")
    result = run_module(gguf_info.main, {"path": str(path)}, expect_failure=True)
    assert result["msg"].startswith(f"{path} is not a GGUF file")


def test_truncated(tmp_path):
    data = gw.llama_writer().to_bytes()
    path = tmp_path / "partial-download.gguf"
    path.write_bytes(data[: len(data) // 3])
    result = run_module(gguf_info.main, {"path": str(path)}, expect_failure=True)
    assert result["msg"].startswith(f"{path} is truncated")


def test_unreadable(tmp_path, monkeypatch):
    path = gw.llama_writer().write(tmp_path / "locked.gguf")

    def denied(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(gguf_info, "read_gguf", denied)
    result = run_module(gguf_info.main, {"path": str(path)}, expect_failure=True)
    assert result["msg"] == f"cannot read {path}: [Errno 13] Permission denied"


def test_path_is_required():
    result = run_module(gguf_info.main, {}, expect_failure=True)
    assert "path" in result["msg"]
