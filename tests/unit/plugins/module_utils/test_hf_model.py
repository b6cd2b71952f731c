"""plugins/module_utils/hf_model.py: the clear refusals before conversion and the hub's answers."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from ansible_collections.slm.edge.plugins.module_utils import hf_model


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
    out = hf_model.check_model_dir(model, tree)
    return (1 if out["error"] else 0), out


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


def test_without_a_source_tree_any_architecture_is_accepted(tmp_path):
    rc, out = check(make_model(tmp_path, arch="FancyNewForCausalLM"), "")
    assert rc == 0 and out["weights"] == ["model.safetensors"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x04\x00", "truncated (only 2 bytes)"),
        (struct.pack("<Q", 2**40) + b"{}", "corrupted header (declared header length 1099511627776"),
        (struct.pack("<Q", 3) + b"{x}", "corrupted header (Expecting property name"),
        (struct.pack("<Q", 2) + b"[]", "corrupted header (not a JSON object)"),
        (struct.pack("<Q", 11) + b'{"w": {}}  ', "corrupted header (a tensor without data_offsets)"),
    ],
)
def test_broken_safetensors_headers(tmp_path, content, message):
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    assert message in hf_model.check_safetensors(path)


def test_config_that_is_not_json(tmp_path, tree):
    model = make_model(tmp_path)
    (model / "config.json").write_text("{")
    rc, out = check(model, tree)
    assert rc == 1 and "config.json is not JSON" in out["error"]


def test_no_weights(tmp_path, tree):
    model = make_model(tmp_path)
    (model / "model.safetensors").unlink()
    rc, out = check(model, tree)
    assert rc == 1 and out["error"].endswith("has no weights (*.safetensors or *.bin)")


# ------------------------------------------------------------------ the hub
@pytest.mark.parametrize("repo", ["Qwen/Qwen2.5-0.5B-Instruct", "a/b", "TinyLlama/TinyLlama-1.1B-Chat-v1.0"])
def test_repository_names(repo):
    assert hf_model.check_repo(repo) == ""


@pytest.mark.parametrize("repo", ["", "qwen", "a/b/c", "../etc/passwd", "a/b?x=1", "https://x/a/b"])
def test_bad_repository_names(repo):
    assert "is not a repository name" in hf_model.check_repo(repo)


def test_the_revision_is_quoted_and_the_url_has_no_token():
    url = hf_model.model_info_url("https://hub.example/", "org/model", "refs/pr/1")
    assert url == "https://hub.example/api/models/org/model/revision/refs%2Fpr%2F1"


def test_hub_summary():
    data = {
        "id": "Org/Model",
        "sha": "abc123",
        "private": False,
        "gated": "manual",
        "siblings": [{"rfilename": "tokenizer.json"}, {"rfilename": "config.json"}, {"rfilename": "m.safetensors"}],
    }
    hub = hf_model.hub_summary(data, "org/model", "main")
    assert hub["repo"] == "Org/Model" and hub["sha"] == "abc123" and hub["gated"] == "manual"
    assert hub["files"] == ["config.json", "m.safetensors", "tokenizer.json"]
    assert (hub["has_config"], hub["has_tokenizer"], hub["weights"]) == (True, True, ["m.safetensors"])


@pytest.mark.parametrize(
    ("status", "code", "token", "expected"),
    [
        (401, "RepoNotFound", False, "org/model was not found on the hub: fix model_hf_repo; a private or gated"),
        (404, "RepoNotFound", True, "org/model was not found on the hub: fix model_hf_repo"),
        (401, "", True, "the token was refused for org/model at revision v1: model_hf_token is invalid"),
        (403, "GatedRepo", True, "org/model is gated and this token has no access to it"),
        (401, "GatedRepo", False, "org/model is gated"),
        (404, "RevisionNotFound", False, "org/model has no revision v1: fix model_hf_revision"),
        (403, "", False, "the hub refused org/model at revision v1 (HTTP 403)"),
        (500, "", False, "the hub answered HTTP 500 for org/model at revision v1"),
        (-1, "", False, "the hub could not be reached for org/model at revision v1"),
    ],
)
def test_hub_refusals_name_the_variable_to_fix(status, code, token, expected):
    assert expected in hf_model.hub_error(status, code, "", repo="org/model", revision="v1", token_given=token)


def test_the_hub_message_is_quoted_and_shortened():
    message = hf_model.hub_error(
        404, "RepoNotFound", "Repository not found " + "x" * 500, repo="org/m", revision="main", token_given=False
    )
    assert "(the hub says: Repository not found xxx" in message
    assert len(message) < 400
