"""Testinfra checks that the nspawn harness gives a real systemd host."""

import json


def test_systemd_is_running(host):
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state in ("running", "degraded"), state
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"


def test_data_disk_is_visible_with_ebs_link(host):
    links = host.run("ls /dev/disk/by-id/").stdout.split()
    ebs = [name for name in links if name.startswith("nvme-Amazon_Elastic_Block_Store_vol")]
    assert len(ebs) == 1, links
    target = host.run(f"readlink -f /dev/disk/by-id/{ebs[0]}").stdout.strip()
    assert host.run(f"test -b {target}").rc == 0
    size = int(host.run(f"blockdev --getsize64 {target}").stdout)
    assert size == 2 * 1024**3


def test_apt_worked(host):
    assert host.package("jq").is_installed
    assert json.loads(host.run("echo '{\"a\": 1}' | jq -c .").stdout) == {"a": 1}
    assert host.file("/etc/slm-harness-marker").content_string.strip() == "harness ok"
