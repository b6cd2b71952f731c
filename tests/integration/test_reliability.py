"""The reliability matrix (tests/reliability/matrix.yml): every row is automated.

Rows of ``test: validate`` run here: the playbook (playbooks/validate.yml unless the
row names another) on localhost with the row's variables over base_vars.yml must fail
before any change, with a message that names the failing variable and the fix, and
not the rules that did not fail. Other rows name the molecule task or pytest test that
proves them; this file checks that the named test exists.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MATRIX_DIR = REPO / "tests" / "reliability"


def _load_rows() -> list[dict]:
    """matrix.yml plus every tests/reliability/matrix.d/*.yml (one file per topic), or SLM_MATRIX alone."""
    if os.environ.get("SLM_MATRIX"):
        return yaml.safe_load(Path(os.environ["SLM_MATRIX"]).read_text())
    files = [MATRIX_DIR / "matrix.yml", *sorted((MATRIX_DIR / "matrix.d").glob("*.yml"))]
    return [row for f in files for row in (yaml.safe_load(f.read_text()) or [])]


ROWS = _load_rows()
VALIDATE_ROWS = [r for r in ROWS if r.get("test") == "validate"]
OTHER_ROWS = [r for r in ROWS if r.get("test") != "validate"]
EXPECTS = {"refused", "rolled_back", "healed"}
BIN = Path(sys.executable).parent
MIN_ROWS = 40


SECRET_KEYS = re.compile(r"(api_key|token|password|secret)", re.I)


def _env() -> dict:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    return env


def _inventory(tmp: Path) -> Path:
    inv = tmp / "hosts.yml"
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    groups = {g: {"hosts": {"localhost": host}} for g in ("llm_servers", "prompt_queue")}
    inv.write_text(yaml.safe_dump({"all": {"children": groups}}))
    return inv


def _record(row_id: str, value: str) -> str:
    return "{{ __rows | default({}) | combine({'" + row_id + "': " + value + "}) }}"


def _batch_playbook(rows: list[dict], tmp: Path) -> Path:
    """One play that runs each row's role validate entry point in a block and keeps its message.

    The base variables are play vars and the row's are the include's vars, so a row
    overrides the base as an operator's group_vars would. One process for every row.
    """
    tasks = [{"name": "Gather the facts the checks need", "ansible.builtin.setup": {"gather_subset": ["!all", "min"]}}]
    for row in rows:
        tasks.append(
            {
                "name": f"Row {row['id']}",
                "block": [
                    {
                        "name": f"Validate {row['id']}",
                        "ansible.builtin.include_role": {"name": f"slm.edge.{row['role']}", "tasks_from": "validate"},
                        "vars": row.get("vars", {}),
                    },
                    {
                        "name": f"Accepted {row['id']}",
                        "ansible.builtin.set_fact": {"__rows": _record(row["id"], "{'failed': false}")},
                    },
                ],
                "rescue": [
                    {
                        "name": f"Refused {row['id']}",
                        "ansible.builtin.set_fact": {
                            "__rows": _record(
                                row["id"],
                                "{'failed': true, 'msg': ansible_failed_result.msg | default(''), "
                                "'changed': ansible_failed_result.changed | default(false)}",
                            )
                        },
                    }
                ],
            }
        )
    tasks.append(
        {
            "name": "Write the outcomes",
            "ansible.builtin.copy": {
                "content": "{{ __rows | to_json }}",
                "dest": str(tmp / "outcomes.json"),
                "mode": "0600",
            },
        }
    )
    play = [
        {
            "name": "Reliability matrix",
            "hosts": "localhost",
            "gather_facts": False,
            "become": True,
            "vars_files": [str(MATRIX_DIR / "base_vars.yml")],
            "tasks": tasks,
        }
    ]
    path = tmp / "matrix_play.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False, width=10_000))
    return path


def _run_playbook(playbook: str, inv: Path, tmp: Path, name: str, extra: dict | None) -> subprocess.CompletedProcess:
    """Run a playbook; with ``extra`` (a dict), base_vars.yml and then ``extra`` are extra variables."""
    cmd = [str(BIN / "ansible-playbook"), "-i", str(inv), playbook]
    if extra is not None:
        row_vars = tmp / f"{name}.json"
        row_vars.write_text(json.dumps(extra))
        cmd += ["-e", f"@{MATRIX_DIR / 'base_vars.yml'}", "-e", f"@{row_vars}"]
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=REPO, timeout=600, check=False)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """{row id: {'failed', 'msg', 'stdout'}} for every validate row, and '__base__' for validate.yml alone."""
    tmp = tmp_path_factory.mktemp("reliability")
    inv = _inventory(tmp)
    batch = [r for r in VALIDATE_ROWS if "playbook" not in r]
    alone = [r for r in VALIDATE_ROWS if "playbook" in r]
    jobs = [
        ("__batch__", str(_batch_playbook(batch, tmp)), None),
        ("__base__", str(REPO / "playbooks" / "validate.yml"), {}),
    ]
    jobs += [(r["id"], str(REPO / r["playbook"]), r.get("vars", {})) for r in alone]
    with ThreadPoolExecutor(max_workers=2) as pool:
        ran = list(pool.map(lambda j: _run_playbook(j[1], inv, tmp, j[0], j[2]), jobs))
    procs = {job[0]: proc for job, proc in zip(jobs, ran, strict=True)}
    batch_proc = procs.pop("__batch__")
    assert batch_proc.returncode == 0, batch_proc.stdout[-4000:] + batch_proc.stderr[-2000:]
    found = json.loads((tmp / "outcomes.json").read_text())
    result = {
        rid: dict(found.get(rid, {"failed": None, "msg": "row did not run"}), stdout=batch_proc.stdout)
        for rid in (r["id"] for r in batch)
    }
    for rid, proc in procs.items():
        out = proc.stdout + proc.stderr
        result[rid] = {
            "failed": proc.returncode != 0,
            "msg": out,
            "stdout": out,
            "changed": not re.search(r"changed=0\b", out),
        }
    return result


def test_matrix_is_large_and_well_formed():
    ids = [r["id"] for r in ROWS]
    assert len(ids) == len(set(ids)), "duplicate ids"
    assert len(ROWS) >= MIN_ROWS, f"{len(ROWS)} rows, want at least {MIN_ROWS}"
    for row in ROWS:
        assert row.get("expect") in EXPECTS, row["id"]
        assert row.get("case") and row.get("role") and row.get("test"), row["id"]
        if row["test"] == "validate":
            assert row.get("vars") and row.get("message"), row["id"]
    counts = {e: sum(r["expect"] == e for r in ROWS) for e in sorted(EXPECTS)}
    print(f"\nreliability matrix: {len(ROWS)} rows, " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def test_base_vars_pass_validation(outcomes):
    base = outcomes["__base__"]
    assert not base["failed"], base["msg"][-4000:]


@pytest.mark.parametrize("row", VALIDATE_ROWS, ids=lambda r: r["id"])
def test_refused_before_any_change(row, outcomes):
    got = outcomes[row["id"]]
    assert got["failed"], f"{row['id']} was accepted"
    assert not got.get("changed"), f"{row['id']}: the refusal changed something"
    msg = got["msg"]
    for pattern in row["message"] if isinstance(row["message"], list) else [row["message"]]:
        assert re.search(pattern, msg), f"{row['id']}: /{pattern}/ not in the failure:\n{msg[-3000:]}"
    for pattern in row.get("not_message", []):
        assert not re.search(pattern, msg), f"{row['id']}: /{pattern}/ should not be in the failure:\n{msg[-3000:]}"
    for key, value in row.get("vars", {}).items():
        if SECRET_KEYS.search(key) and isinstance(value, str) and len(value.strip()) >= 4:
            assert value.strip() not in got["stdout"], f"{row['id']}: the secret {key} appears in the output"


@pytest.mark.parametrize("row", OTHER_ROWS, ids=lambda r: r["id"])
def test_named_test_exists(row):
    path, name = row["test"].split("::", 1) if "::" in row["test"] else (row["test"], "")
    file = REPO / path
    assert file.is_file(), f"{row['id']}: {path} does not exist"
    text = file.read_text()
    if path.endswith(".py"):
        assert re.search(rf"def {re.escape(name)}\b", text), f"{row['id']}: no test {name} in {path}"
    else:
        tasks = re.findall(r"^\s*-?\s*name:\s*(.+?)\s*$", text, re.M)
        assert name in [t.strip("\"'") for t in tasks], f"{row['id']}: no task named {name!r} in {path}"
