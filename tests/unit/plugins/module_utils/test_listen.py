"""slm.edge listen_info: /proc/net/tcp parsing, process and unit mapping, ownership."""

from __future__ import annotations

import os
import socket
import threading

import pytest
from ansible_collections.slm.edge.plugins.module_utils import listen
from ansible_collections.slm.edge.plugins.modules.listen_info import foreign_listeners, owned_ports, parse_show

TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 4242 1 0 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17 1 0 100 0 0 10 0
   2: 0100007F:1F90 0100007F:D2B4 01 00000000:00000000 00:00000000 00000000   999        0 5555 1 0 100 0 0 10 0
"""
TCP6 = (
    "  sl  local_address                         remote_address                        st tx_queue rx_queue tr\n"
    "   0: 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000   999        0 4343 1 0 100 0 0 10 0\n"
)


def test_parses_listening_ipv4_sockets_only():
    found = listen.parse_proc_net(TCP, "ipv4")
    assert found == [
        {"address": "127.0.0.1", "port": 8080, "inode": 4242, "family": "ipv4"},
        {"address": "0.0.0.0", "port": 22, "inode": 17, "family": "ipv4"},
    ]


def test_parses_ipv6():
    assert listen.parse_proc_net(TCP6, "ipv6") == [{"address": "::1", "port": 8081, "inode": 4343, "family": "ipv6"}]


@pytest.mark.parametrize(
    ("cgroup", "unit"),
    [
        ("0::/system.slice/system-llama\\x2dserver.slice/llama-server@0.service\n", "llama-server@0.service"),
        ("0::/user.slice/user-0.slice/session-3.scope\n", "session-3.scope"),
        ("12:pids:/\n0::/init.scope\n", "init.scope"),
        ("0::/\n", ""),
    ],
)
def test_unit_of_cgroup(cgroup, unit):
    assert listen.unit_of_cgroup(cgroup) == unit


def fake_proc(tmp_path, pid, inode, comm, unit, cmdline):
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True, exist_ok=True)
    (proc / "net" / "tcp").write_text(TCP)
    (proc / "net" / "tcp6").write_text(TCP6)
    d = proc / str(pid)
    (d / "fd").mkdir(parents=True)
    os.symlink(f"socket:[{inode}]", d / "fd" / "3")
    os.symlink("/dev/null", d / "fd" / "0")
    (d / "comm").write_text(comm + "\n")
    (d / "cgroup").write_text(f"0::/system.slice/{unit}\n")
    (d / "cmdline").write_bytes(b"\0".join(c.encode() for c in cmdline) + b"\0")
    return proc


def test_maps_sockets_to_processes_and_units(tmp_path):
    cmd = ["/opt/llama-server", "--port", "8080"]
    proc = fake_proc(tmp_path, 812, 4242, "llama-server", "llama-server@0.service", cmd)
    found = listen.listeners([8080, 8081, 9999], proc=str(proc))
    assert found["9999"] == []
    assert found["8080"] == [
        {
            "address": "127.0.0.1",
            "family": "ipv4",
            "inode": 4242,
            "pid": 812,
            "comm": "llama-server",
            "cmdline": ["/opt/llama-server", "--port", "8080"],
            "unit": "llama-server@0.service",
        }
    ]
    # 8081's socket has no visible owner (another container sharing the network).
    assert found["8081"][0]["pid"] == 0
    assert "not visible" in listen.describe(found["8081"][0])


def test_foreign_and_owned(tmp_path):
    proc = fake_proc(tmp_path, 900, 4242, "python3", "session-3.scope", ["python3", "-m", "http.server", "8080"])
    found = listen.listeners([8080], proc=str(proc))
    foreign = foreign_listeners(found, {"8080": "llama-server@0.service"})
    assert len(foreign) == 1
    assert foreign[0]["pid"] == 900
    assert "python3" in foreign[0]["holder"]
    assert "session-3.scope" in foreign[0]["holder"]
    units = {"llama-server@0.service": {"main_pid": 812}}
    assert owned_ports(found, {"8080": "llama-server@0.service"}, units) == {"8080": False}
    assert owned_ports(found, {"8080": "llama-server@0.service"}, {"llama-server@0.service": {"main_pid": 900}}) == {
        "8080": True
    }
    ours = fake_proc(tmp_path / "b", 1, 4242, "x", "llama-server@0.service", ["x"])
    assert foreign_listeners(listen.listeners([8080], proc=str(ours)), {"8080": "llama-server@0.service"}) == []


def test_parse_show():
    text = "MainPID=812\nActiveState=active\nSubState=running\nResult=success\nNRestarts=2\n"
    assert parse_show(text) == {
        "main_pid": 812,
        "active_state": "active",
        "sub_state": "running",
        "result": "success",
        "n_restarts": 2,
    }
    assert parse_show("")["main_pid"] == 0


def test_finds_a_real_listener_of_this_process():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    stop = threading.Event()
    try:
        found = listen.listeners([port])[str(port)]
        assert [e["pid"] for e in found] == [os.getpid()]
    finally:
        stop.set()
        srv.close()
