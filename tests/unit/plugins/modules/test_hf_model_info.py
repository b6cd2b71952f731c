"""Module-level tests for slm.edge.hf_model_info: the hub's answers (fetch_url mocked), token handling."""

from __future__ import annotations

import io
import json
from unittest import mock

import pytest
from ansible_collections.slm.edge.plugins.modules import hf_model_info
from ansible_module_runner import run_module

TOKEN = "hf_SECRETsecretSECRETsecret1234"
MODEL_INFO = {
    "id": "Qwen/Qwen2.5-0.5B-Instruct",
    "sha": "7ae557604adf67be50417f59c2c2f167def9a775",
    "private": False,
    "gated": False,
    "siblings": [{"rfilename": n} for n in ("config.json", "model.safetensors", "tokenizer.json")],
}


class Hub:
    """Records what fetch_url was asked and answers like the hub."""

    def __init__(self, status=200, body=None, headers=None, msg="OK"):
        self.status, self.body, self.headers, self.msg = status, body, headers or {}, msg
        self.calls = []

    def __call__(self, module, url, **kwargs):
        self.calls.append({"url": url, **kwargs})
        info = {"status": self.status, "msg": self.msg, "url": url, **self.headers}
        if self.status == 200:
            return io.BytesIO(json.dumps(self.body).encode()), info
        if self.status != -1:
            info["body"] = json.dumps(self.body or {"error": "Repository not found"}).encode()
        return None, info


def run(hub, args, **kwargs):
    with mock.patch.object(hf_model_info, "fetch_url", hub):
        return run_module(hf_model_info.main, args, **kwargs)


@pytest.mark.parametrize("check_mode", [False, True])
def test_the_hub_answers_with_the_commit_and_files(check_mode):
    hub = Hub(body=MODEL_INFO)
    result = run(hub, {"repo": "Qwen/Qwen2.5-0.5B-Instruct", "revision": "main"}, check_mode=check_mode)
    assert (result["changed"], result["error"]) == (False, "")
    assert result["hub"]["sha"] == MODEL_INFO["sha"]
    assert result["hub"]["weights"] == ["model.safetensors"]
    assert hub.calls[0]["url"] == "https://huggingface.co/api/models/Qwen/Qwen2.5-0.5B-Instruct/revision/main"
    assert "Authorization" not in hub.calls[0]["headers"]


def test_the_token_goes_in_a_header_only_and_is_masked():
    hub = Hub(body=MODEL_INFO)
    result = run(hub, {"repo": "org/model", "token": TOKEN, "endpoint": "https://mirror.example/"})
    call = hub.calls[0]
    assert call["headers"]["Authorization"] == "Bearer " + TOKEN
    assert TOKEN not in call["url"]
    assert call["url"].startswith("https://mirror.example/api/models/org/model/")
    assert TOKEN not in json.dumps(result)


def test_the_token_can_come_from_a_file(tmp_path):
    token_file = tmp_path / "hf_token"
    token_file.write_text(TOKEN + "\n")
    hub = Hub(body=MODEL_INFO)
    run(hub, {"repo": "org/model", "token_file": str(token_file)})
    assert hub.calls[0]["headers"]["Authorization"] == "Bearer " + TOKEN


@pytest.mark.parametrize(("content", "message"), [(None, "cannot be read"), ("  \n", "is empty")])
def test_an_unusable_token_file_fails_naming_the_file(tmp_path, content, message):
    token_file = tmp_path / "hf_token"
    if content is not None:
        token_file.write_text(content)
    hub = Hub(body=MODEL_INFO)
    result = run(hub, {"repo": "org/model", "token_file": str(token_file)}, expect_failure=True)
    assert result["msg"].startswith(f"token_file {token_file} {message}")
    assert hub.calls == []


@pytest.mark.parametrize(
    ("status", "headers", "token", "expected"),
    [
        (
            401,
            {"x-error-code": "RepoNotFound"},
            "",
            "org/model was not found on the hub (the hub says: Repository not found): fix model_hf_repo",
        ),
        (403, {"x-error-code": "GatedRepo"}, TOKEN, "org/model is gated and this token has no access to it"),
        (
            404,
            {"x-error-code": "RevisionNotFound"},
            "",
            "org/model has no revision main (the hub says: Repository not found)",
        ),
        (401, {}, TOKEN, "model_hf_token is invalid or expired"),
        (-1, {}, "", "the hub could not be reached for org/model at revision main"),
    ],
)
def test_refusals_are_an_error_result_without_the_token(status, headers, token, expected):
    hub = Hub(status=status, headers=headers, msg="Request failed: <urlopen error timed out>")
    args = {"repo": "org/model", **({"token": token} if token else {})}
    result = run(hub, args)
    assert expected in result["error"]
    assert "hub" not in result
    assert TOKEN not in json.dumps(result)


def test_an_answer_that_is_not_the_hub():
    hub = Hub(body=["not", "a", "model"])
    result = run(hub, {"repo": "org/model"})
    assert "is not a JSON object: is model_hf_endpoint the hub?" in result["error"]


def test_a_disabled_repository_is_refused():
    hub = Hub(body={**MODEL_INFO, "disabled": True})
    result = run(hub, {"repo": "org/model"})
    assert result["error"] == "org/model is disabled on the hub: choose another model_hf_repo"


def test_the_directory_is_checked_after_the_hub(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    hub = Hub(body=MODEL_INFO)
    result = run(hub, {"repo": "org/model", "path": str(tmp_path)})
    assert result["hub"]["sha"] == MODEL_INFO["sha"]
    assert result["model"]["architectures"] == ["LlamaForCausalLM"]
    assert "has no tokenizer" in result["error"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "give repo (a hub check), path (a directory check) or both"),
        ({"repo": "not-a-repo"}, "repo='not-a-repo' is not a repository name"),
        ({"repo": "org/model", "revision": ""}, "revision must not be empty"),
        ({"repo": "org/model", "token": TOKEN, "token_file": "/x"}, "parameters are mutually exclusive"),
    ],
)
def test_bad_parameters_fail(args, message):
    hub = Hub(body=MODEL_INFO)
    result = run(hub, args, expect_failure=True)
    assert message in result["msg"]
    assert TOKEN not in result["msg"]
    assert hub.calls == []
