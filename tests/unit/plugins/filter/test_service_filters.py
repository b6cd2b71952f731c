"""slm.edge.systemd_exec and slm.edge.http_url: exact arguments and IPv6-safe URLs."""

from __future__ import annotations

import shlex

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.slm.edge.plugins.filter.http_url import http_url
from ansible_collections.slm.edge.plugins.filter.systemd_exec import systemd_exec

NASTY = ["tiny llama", 'say "hi"', "#not-a-comment", "a=b", "$HOME", "${HOME}", "100%", "%i", ";", "back\\slash", "ünï"]


def systemd_split(line: str) -> list[str]:
    """What systemd does with an ExecStart= value: unquote words, C-unescape, undo $$ and %%."""
    words, cur, i, quoted, started = [], [], 0, False, False
    while i < len(line):
        c = line[i]
        if c == '"':
            quoted, started = not quoted, True
        elif c == "\\" and quoted:
            i += 1
            cur.append(line[i])
        elif c == " " and not quoted:
            if started or cur:
                words.append("".join(cur))
            cur, started = [], False
        elif c in "$%" and line[i + 1 : i + 2] == c:
            cur.append(c)
            i += 1
        elif c in "$%":
            raise AssertionError(f"unescaped {c} at {i} in {line!r}")
        else:
            cur.append(c)
        i += 1
    if started or cur:
        words.append("".join(cur))
    return words


def test_every_argument_arrives_exactly():
    argv = ["/opt/slm/llama.cpp/current/build/bin/llama-server", "--alias", *NASTY]
    line = systemd_exec(argv)
    assert systemd_split(line) == argv


@pytest.mark.parametrize("arg", NASTY)
def test_no_word_splitting_for(arg):
    line = systemd_exec(["/usr/bin/x", arg])
    assert len(systemd_split(line)) == 2
    assert shlex.split(line.replace("$$", "$").replace("%%", "%"))[1] == arg or arg in ("back\\slash",)


@pytest.mark.parametrize("arg", ["two\nlines", "cr\r", "nul\0"])
def test_refuses_new_lines(arg):
    with pytest.raises(AnsibleFilterError, match="new line"):
        systemd_exec(["/usr/bin/x", arg])


@pytest.mark.parametrize("argv", [[], ["relative/bin"], ["/path with space/bin"], "not-a-list"])
def test_refuses_a_bad_executable(argv):
    with pytest.raises(AnsibleFilterError):
        systemd_exec(argv)


@pytest.mark.parametrize(
    ("host", "port", "kwargs", "url"),
    [
        ("127.0.0.1", 8080, {}, "http://127.0.0.1:8080"),
        ("::1", 8080, {"path": "/health"}, "http://[::1]:8080/health"),
        ("[::1]", 8080, {}, "http://[::1]:8080"),
        ("0.0.0.0", 8080, {"path": "health"}, "http://127.0.0.1:8080/health"),
        ("::", 9000, {}, "http://[::1]:9000"),
        ("localhost", "8081", {}, "http://localhost:8081"),
        ("fe80::1%eth0", 80, {"scheme": "https"}, "https://[fe80::1%eth0]:80"),
        ("llm-1.example.internal", 443, {"scheme": "https"}, "https://llm-1.example.internal:443"),
    ],
)
def test_http_url(host, port, kwargs, url):
    assert http_url(host, port, **kwargs) == url


@pytest.mark.parametrize("port", ["80a", 0, 70000, None])
def test_http_url_refuses_bad_ports(port):
    with pytest.raises(AnsibleFilterError):
        http_url("127.0.0.1", port)
