"""Fixtures for the AWS tests (tests/integration/test_aws_moto.py).

A moto server on 127.0.0.1 stands in for EC2, IAM, ELBv2 and SSM. Every fixture
here is prefixed ``aws_``; other test files may add their own fixtures.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parents[2]
AWS_REGION = "us-east-1"
AWS_ZONE = "us-east-1a"
REDHAT_OWNER = "309956199498"

# Credentials the playbooks run with: distinctive, so that a test can prove that
# none of them ever shows up in any output (test_aws_moto.py checks every run,
# some at -vvv). moto accepts any key; AWS_SECURITY_TOKEN is the legacy name AWX's
# AWS credential also sets.
AWS_SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIASLMEDGESECRET0001",
    "AWS_SECRET_ACCESS_KEY": "slmEdgeSecretAccessKey0001+Do/Not/Print+zQ9",
    "AWS_SESSION_TOKEN": "slmEdgeSessionToken0001FwoGZXIvYXdzEDoNotPrintThisToken",
}

# moto 5.2.5 leaves SnapshotId out of DescribeVolumes for volumes made without
# a snapshot; AWS returns "" and amazon.aws.ec2_vol_info (10.x) indexes the key.
# The server therefore runs as `moto_server` does (moto.server.main) after one
# line that gives such volumes the empty snapshot id AWS reports.
_MOTO_LAUNCHER = """
import sys
from moto.ec2.models import elastic_block_store as ebs
_init = ebs.Volume.__init__
def _volume_init(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    if self.snapshot_id is None:
        self.snapshot_id = ""
ebs.Volume.__init__ = _volume_init
from moto.server import main
main(sys.argv[1:])
"""


def _image(ami_id: str, name: str, owner: str, created: str) -> dict:
    return {
        "ami_id": ami_id,
        "name": name,
        "owner_id": owner,
        "creation_date": created,
        "state": "available",
        "public": True,
        "image_location": f"{owner}/{name}",
        "sriov": "simple",
        "root_device_type": "ebs",
        "root_device_name": "/dev/sda1",
        "description": "Provided by Red Hat, Inc." if owner == REDHAT_OWNER else "look-alike",
        "image_type": "machine",
        "platform": None,
        "architecture": "x86_64",
        "virtualization_type": "hvm",
        "hypervisor": "xen",
    }


# What ec2_provision's default lookup must choose from: the newest RHEL 9 image
# of Red Hat's account wins, not a newer look-alike from another owner, not RHEL 8.
AWS_FAKE_IMAGES = {
    "rhel9_old": _image(
        "ami-0f000000000000901",
        "RHEL-9.4.0_HVM-20240423-x86_64-62-Hourly2-GP3",
        REDHAT_OWNER,
        "2024-04-23T00:00:00.000Z",
    ),
    "rhel9_new": _image(
        "ami-0f000000000000902",
        "RHEL-9.6.0_HVM-20250512-x86_64-0-Hourly2-GP3",
        REDHAT_OWNER,
        "2025-05-12T00:00:00.000Z",
    ),
    "other_owner": _image(
        "ami-0f000000000000903",
        "RHEL-9.9.0_HVM-20990101-x86_64-0-Hourly2-GP3",
        "111122223333",
        "2099-01-01T00:00:00.000Z",
    ),
    "rhel8": _image(
        "ami-0f000000000000904",
        "RHEL-8.10.0_HVM-20260101-x86_64-0-Hourly2-GP3",
        REDHAT_OWNER,
        "2026-01-01T00:00:00.000Z",
    ),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def aws_fake_images():
    """The images the moto server knows (see AWS_FAKE_IMAGES)."""
    return AWS_FAKE_IMAGES


@pytest.fixture(scope="session")
def aws_secret_values():
    """The credential values that must never appear in a playbook's output."""
    return list(AWS_SECRETS.values())


@pytest.fixture(scope="session")
def aws_moto_server(tmp_path_factory):
    """Start a moto server on a free port; yield its URL; stop it at the end."""
    workdir = tmp_path_factory.mktemp("moto")
    images = workdir / "amis.json"
    images.write_text(json.dumps(list(AWS_FAKE_IMAGES.values())))
    port = _free_port()
    env = dict(
        os.environ,
        MOTO_AMIS_PATH=str(images),  # only our images: fast and deterministic
        MOTO_IAM_LOAD_MANAGED_POLICIES="true",  # AmazonSSMManagedInstanceCore must exist
    )
    log = (workdir / "moto.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", _MOTO_LAUNCHER, "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"moto server did not start: {(workdir / 'moto.log').read_text()[-2000:]}")
            time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


@pytest.fixture(scope="session")
def aws_env(aws_moto_server):
    """Environment for boto3 and ansible-playbook: distinctive fake credentials, region, repo config.

    The endpoint is deliberately not in the environment: playbooks get it with
    -e aws_endpoint_url, the inventory with AWS_URL, boto3 clients explicitly.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ANSIBLE_"))}
    env.update(AWS_SECRETS)
    env.update(
        AWS_SECURITY_TOKEN=AWS_SECRETS["AWS_SESSION_TOKEN"],
        AWS_REGION=AWS_REGION,
        AWS_DEFAULT_REGION=AWS_REGION,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_NOCOLOR="true",
        ANSIBLE_FORCE_COLOR="false",
        ANSIBLE_DEPRECATION_WARNINGS="false",
        ANSIBLE_RETRY_FILES_ENABLED="false",
        ANSIBLE_PIPELINING="true",  # local connection: no temp files per module
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


@pytest.fixture(scope="session")
def aws_client(aws_moto_server, aws_env):
    """Factory for boto3 clients talking to the moto server."""
    session = boto3.session.Session(
        aws_access_key_id=aws_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws_env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=aws_env["AWS_SESSION_TOKEN"],
        region_name=AWS_REGION,
    )

    def make(service: str):
        return session.client(service, endpoint_url=aws_moto_server)

    return make


@pytest.fixture(scope="session")
def aws_network(aws_client):
    """A VPC with a private subnet (the 'Local Zone' subnet), a load balancer
    security group, and a subnet of another VPC for the mismatch check."""
    ec2 = aws_client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24", AvailabilityZone=AWS_ZONE)["Subnet"]["SubnetId"]
    alb_sg = ec2.create_security_group(GroupName="test-alb", Description="load balancer", VpcId=vpc)["GroupId"]
    other_vpc = ec2.create_vpc(CidrBlock="10.43.0.0/16")["Vpc"]["VpcId"]
    other_subnet = ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.43.1.0/24", AvailabilityZone=AWS_ZONE)["Subnet"][
        "SubnetId"
    ]
    return {
        "vpc_id": vpc,
        "subnet_id": subnet,
        "alb_sg_id": alb_sg,
        "zone": AWS_ZONE,
        "region": AWS_REGION,
        "other_subnet_id": other_subnet,
    }
