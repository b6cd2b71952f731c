"""slm.edge.url_with_credentials and slm.edge.url_masked: one rule for credentials in URLs."""

from __future__ import annotations

import pytest
from ansible_collections.slm.edge.plugins.filter.url_masked import FilterModule
from ansible_collections.slm.edge.plugins.test.url_with_credentials import TestModule as UrlTests

with_credentials = UrlTests().tests()["url_with_credentials"]
url_masked = FilterModule().filters()["url_masked"]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:secret@host/repo.git", "https://***@host/repo.git"),
        ("https://hf_TOKEN@huggingface.co/x", "https://***@huggingface.co/x"),
        ("HTTPS://User:Secret@Host/x", "HTTPS://***@Host/x"),
        ("s3://key:secret@bucket/path", "s3://***@bucket/path"),
        ("git+ssh://u:p@host/repo", "git+ssh://***@host/repo"),
    ],
)
def test_credentials_are_found_and_masked(url, shown):
    assert with_credentials(url)
    assert url_masked(url) == shown
    assert "secret" not in url_masked(url).lower() and "token" not in url_masked(url).lower()


@pytest.mark.parametrize(
    "url",
    [
        "https://huggingface.co/org/model",
        "https://host/path@v1",  # an @ in the path is not a user part
        "/var/cache/llama.cpp.tar.gz",
        "",
    ],
)
def test_urls_without_credentials_pass_unchanged(url):
    assert not with_credentials(url)
    assert url_masked(url) == url


def test_a_user_name_alone_outside_http_is_no_credential_but_is_masked_in_messages():
    assert not with_credentials("ssh://git@host/repo.git")
    assert url_masked("ssh://git@host/repo.git") == "ssh://***@host/repo.git"
