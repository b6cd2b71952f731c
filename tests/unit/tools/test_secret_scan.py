"""tests/tools/secret_scan.py: what counts as a leak (raw, percent, base64 at every alignment),
redaction of every report, secrets never taken from the command line, world-readable only."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import sys
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
# Values of its own: the scenarios scan for theirs while this tier may run beside them.
SECRET = "slmUNITapikey0123456789"
TOKEN = "hf_slmUNITtoken0123456789"


def _load():
    spec = importlib.util.spec_from_file_location("secret_scan", ROOT / "tests/tools/secret_scan.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["secret_scan"] = module
    spec.loader.exec_module(module)
    return module


scan = _load()


@pytest.fixture
def matcher():
    return scan.Matcher({"api_key": SECRET, "hf_token": TOKEN})


def test_raw_value_is_found_with_its_name_and_offset(matcher):
    data = b"header Authorization: Bearer " + SECRET.encode() + b" trailer"
    (hit,) = matcher.find(data, "out")
    assert (hit.secret, hit.encoding, hit.offset) == ("api_key", "raw", data.index(SECRET.encode()))
    assert SECRET not in hit.context and "<api_key>" in hit.context


@pytest.mark.parametrize("prefix", ["", "u", "us", "user:", "x" * 7])
def test_base64_inside_any_string_at_every_alignment(matcher, prefix):
    # An HTTP Basic header: base64("user:" + token) shares no aligned block with base64(token).
    blob = base64.b64encode((prefix + TOKEN + "!tail").encode())
    hits = matcher.find(b"Authorization: Basic " + blob, "out")
    assert [h.encoding for h in hits if h.secret == "hf_token"] == ["base64"]


def test_base64url_and_percent_encoded_forms():
    odd = "p@ss/w+rd?=&SECRET~~~~"
    m = scan.Matcher({"pw": odd})
    url = b"https://user:" + urllib.parse.quote(odd, safe="").encode() + b"@host/repo"
    assert [h.encoding for h in m.find(url, "u")] == ["percent"]
    blob = base64.urlsafe_b64encode(b"..." + odd.encode() + b"...")
    assert [h.encoding for h in m.find(blob, "b")] == ["base64url"]


def test_nothing_found_in_clean_or_near_miss_data(matcher):
    assert matcher.find(b"slmUNITapikey012345678 (one character short) and hf_slmUNIT", "x") == []
    assert matcher.find(b"", "x") == []


def test_every_occurrence_is_reported_once(matcher):
    data = (SECRET + "," + SECRET).encode()
    assert [h.offset for h in matcher.find(data, "x")] == [0, len(SECRET) + 1]


def test_redaction_removes_every_form(matcher):
    data = (SECRET + " " + base64.b64encode(b"user:" + TOKEN.encode()).decode()).encode()
    text = matcher.redact(data)
    assert SECRET not in text and "<api_key>" in text
    assert base64.b64encode(b"user:" + TOKEN.encode()).decode()[8:-4] not in text


def test_short_secrets_are_refused():
    with pytest.raises(ValueError, match="shorter than"):
        scan.Matcher({"pw": "abc"})


def test_base64_needles_depend_only_on_the_value():
    value = b"0123456789abcdefghij"
    for needle in scan.base64_needles(value):
        for lead in (b"", b"a", b"ab", b"abc", b"\xff\xfe"):
            for tail in (b"", b"Z", b"\x00\x01"):
                if needle in base64.b64encode(lead + value + tail):
                    break
            else:
                continue
            break
        else:
            pytest.fail(f"{needle!r} is in no encoding of the value")
    # Each leading length (mod 3) is covered by one of the needles.
    for lead in (b"", b"a", b"ab"):
        assert any(n in base64.b64encode(lead + value + b"tail") for n in scan.base64_needles(value))


def test_secrets_file_must_be_private_and_well_formed(tmp_path, monkeypatch):
    f = tmp_path / "s"
    f.write_text(f"# comment\napi_key={SECRET}\n\n")
    f.chmod(0o644)
    with pytest.raises(SystemExit, match="readable by others"):
        scan.load_secrets([str(f)], [])
    f.chmod(0o600)
    assert scan.load_secrets([str(f)], []) == {"api_key": SECRET}
    f.write_text("novalue\n")
    with pytest.raises(SystemExit, match="line 1"):
        scan.load_secrets([str(f)], [])
    monkeypatch.setenv("SLM_TEST_SECRET", TOKEN)
    assert scan.load_secrets([], ["SLM_TEST_SECRET"]) == {"SLM_TEST_SECRET": TOKEN}
    with pytest.raises(SystemExit, match="no secrets"):
        scan.load_secrets([], [])


def test_local_walk_reads_world_readable_files_only_and_chunk_borders(tmp_path, monkeypatch, matcher):
    (tmp_path / "open.conf").write_text(f"key={SECRET}\n")
    (tmp_path / "open.conf").chmod(0o644)
    (tmp_path / "private.conf").write_text(f"key={SECRET}\n")
    (tmp_path / "private.conf").chmod(0o600)
    big = tmp_path / "sub" / "big.bin"
    big.parent.mkdir()
    # The value straddles two read chunks.
    monkeypatch.setattr(scan, "CHUNK", 64)
    big.write_bytes(b"x" * 50 + TOKEN.encode() + b"y" * 100)
    big.chmod(0o644)
    found, result = scan.scan_local(matcher, [str(tmp_path)])
    assert sorted((Path(f.where.split(":", 1)[1]).name, f.secret, f.offset) for f in found) == [
        ("big.bin", "hf_token", 50),
        ("open.conf", "api_key", 4),
    ]
    assert result["scanned"] == 2
    found, result = scan.scan_local(matcher, [str(tmp_path)], all_modes=True)
    assert {Path(f.where).name for f in found} == {"open.conf", "private.conf", "big.bin"}


def test_run_mode_catches_output_and_command_line_and_never_prints_the_value(tmp_path, capsys):
    secrets = tmp_path / "s"
    secrets.write_text(f"api_key={SECRET}\n")
    secrets.chmod(0o600)
    # The child reads the value from a private file and puts it on its own command line.
    script = f"import subprocess,sys; v=open({str(secrets)!r}).read().split('=',1)[1].strip(); "
    script += "subprocess.run([sys.executable, '-c', 'import time; time.sleep(1)', v]) "
    script += "if len(sys.argv) > 1 else print('clean')"
    rc = scan.main(["--secrets-file", str(secrets), "--interval", "0.05", "--", sys.executable, "-c", script, "leak"])
    out = capsys.readouterr().out
    assert rc == 1 and SECRET not in out
    summary = json.loads(out.strip().splitlines()[-1])
    assert any("cmdline" in f["where"] and f["secret"] == "api_key" for f in summary["findings"])
    assert summary["samples"]["local"] > 3

    rc = scan.main(["--secrets-file", str(secrets), "--", sys.executable, "-c", script])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and summary["ok"] and summary["findings"] == [] and summary["command"]["rc"] == 0

    printer = f"print(open({str(secrets)!r}).read())"
    rc = scan.main(["--secrets-file", str(secrets), "--", sys.executable, "-c", printer])
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert rc == 1 and SECRET not in out
    assert [f["where"] for f in summary["findings"]] == ["command output"]


def test_a_failing_command_fails_the_scan_with_a_redacted_tail(tmp_path, capsys):
    secrets = tmp_path / "s"
    secrets.write_text(f"api_key={SECRET}\n")
    os.chmod(secrets, 0o600)
    rc = scan.main(["--secrets-file", str(secrets), "--", sys.executable, "-c", "raise SystemExit(3)"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 1 and summary["command"]["rc"] == 3 and "expected 0" in summary["errors"][0]


def test_missing_machine_is_an_error_not_a_pass(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(scan, "STATE_ROOT", tmp_path)
    secrets = tmp_path / "s"
    secrets.write_text(f"api_key={SECRET}\n")
    secrets.chmod(0o600)
    rc = scan.main(["--secrets-file", str(secrets), "--machine", "no-such-machine-xyz"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 1 and "not running" in summary["errors"][0]


def test_the_local_walk_skips_other_tiers_scratch_copies_of_the_repository(tmp_path, matcher):
    for folder in ("slm-edge-sanity-abc123/ansible_collections", "pytest-of-root/pytest-7", "ansible-tmp-1"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "leak.txt").write_text(f"key={SECRET}\n")
        (tmp_path / folder / "leak.txt").chmod(0o644)
    found = scan.scan_local(matcher, [str(tmp_path)], skip_globs=scan.LOCAL_SKIP_GLOBS)[0]
    assert [Path(f.where.split(":", 1)[1]).parent.name for f in found] == ["ansible-tmp-1"]
