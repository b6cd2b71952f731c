"""provision -> inventory -> cleanup against a moto server (no AWS account needed).

Run from the repository root:  .venv/bin/python -m pytest tests/integration/test_aws_moto.py

Cluster "slm-it" is the runbook's setup (2 instances, RHEL 9 image looked up,
gp3, target group); cluster "slm-it-b" takes the other branches (explicit
image, gp2, KMS key, data volume kept on termination, like a volume added in
the console) so that cleanup has to find and delete the left-over 300 GiB
volume, the runbook's last check. Tests run in file order; each cleanup test
only needs the fixtures, so any test can also run alone.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CLUSTER = "slm-it"
CLUSTER_B = "slm-it-b"
SSM_BUCKET = "slm-it-ssm-transfer"
ALLOWED_CIDR = "10.99.0.0/16"
SSM_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
LIVE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"]
RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


# ---------------------------------------------------------------- helpers


def run_playbook(env, playbook, extra, *, check=True):
    """ansible-playbook with -e for every item of `extra`; returns (rc, output, recap)."""
    cmd = [str(BIN / "ansible-playbook"), f"playbooks/{playbook}"]
    for key, value in extra.items():
        cmd += ["-e", json.dumps({key: value})]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    output = proc.stdout + proc.stderr
    match = RECAP.search(output)
    recap = (
        dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups()), strict=True)) if match else {}
    )
    if check:
        assert proc.returncode == 0, f"{playbook} failed (rc={proc.returncode}):\n{output[-6000:]}"
    return proc.returncode, output, recap


def aws_vars(server, network, cluster):
    return {
        "aws_endpoint_url": server,
        "aws_region": network["region"],
        "ec2_provision_vpc_id": network["vpc_id"],
        "ec2_provision_subnet_id": network["subnet_id"],
        "ec2_provision_cluster_name": cluster,
        "ec2_provision_wait_for_ssm": False,
    }


def live_instances(ec2, cluster):
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[
            {"Name": "tag:slm:cluster", "Values": [cluster]},
            {"Name": "instance-state-name", "Values": LIVE_STATES},
        ]
    )
    return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]


def tagged(ec2, what, cluster):
    filters = [{"Name": "tag:slm:cluster", "Values": [cluster]}]
    if what == "volumes":
        return ec2.describe_volumes(Filters=filters)["Volumes"]
    return ec2.describe_security_groups(Filters=filters)["SecurityGroups"]


def tags(resource):
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def unwrap(value):
    """ansible-inventory --list marks untrusted strings as {"__ansible_unsafe": "..."}."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def provisioned(aws_moto_server, aws_env, aws_network):
    """First provision of cluster slm-it: 2 instances, image looked up, target group created."""
    extra = aws_vars(aws_moto_server, aws_network, CLUSTER) | {
        "ec2_provision_count": 2,
        "ec2_provision_ingress_cidrs": [ALLOWED_CIDR],
        "ec2_provision_ingress_security_group_id": aws_network["alb_sg_id"],
        "ec2_provision_target_group_name": f"{CLUSTER}-tg",
        "ec2_provision_ssm_bucket_name": SSM_BUCKET,
    }
    _rc, output, recap = run_playbook(aws_env, "provision.yml", extra)
    assert recap["changed"] > 0
    return {"extra": extra, "output": output}


# ---------------------------------------------------------------- provision


def test_instances_match_the_runbook(provisioned, aws_client, aws_network, aws_fake_images):
    ec2 = aws_client("ec2")
    instances = live_instances(ec2, CLUSTER)
    assert len(instances) == 2
    for inst in instances:
        assert inst["State"]["Name"] == "running"
        assert inst["InstanceType"] == "g4dn.12xlarge"
        assert inst["SubnetId"] == aws_network["subnet_id"]
        # newest RHEL 9 of Red Hat's account, not the newer look-alike or RHEL 8
        assert inst["ImageId"] == aws_fake_images["rhel9_new"]["ami_id"]
        assert inst["MetadataOptions"]["HttpTokens"] == "required"
        assert inst["IamInstanceProfile"]["Arn"].endswith(f"instance-profile/{CLUSTER}-llm-server-ssm")
        assert not inst.get("KeyName"), "no SSH key pair"
        t = tags(inst)
        assert t["slm:cluster"] == CLUSTER
        assert t["slm:role"] == "llm-server"
        assert t["Name"] == f"{CLUSTER}-llm-server"
        assert t["slm:ssm_bucket"] == SSM_BUCKET
        data = [m for m in inst["BlockDeviceMappings"] if m["DeviceName"] == "/dev/sdb"]
        assert len(data) == 1
        assert t["slm:data_volume_id"] == data[0]["Ebs"]["VolumeId"]


def test_no_public_ip(provisioned, aws_client):
    for inst in live_instances(aws_client("ec2"), CLUSTER):
        nic = inst["NetworkInterfaces"][0]
        assert "Association" not in nic or not nic["Association"].get("PublicIp"), nic


def test_volumes_root_30_data_300_encrypted_and_tagged(provisioned, aws_client):
    ec2 = aws_client("ec2")
    volumes = tagged(ec2, "volumes", CLUSTER)
    assert len(volumes) == 4
    by_kind = {"root": [], "data": []}
    for vol in volumes:
        # root volumes carry the instance's tags; data volumes are tagged slm:volume=data too
        by_kind[tags(vol).get("slm:volume", "root")].append(vol)
        assert vol["VolumeType"] == "gp3"
        assert vol["Encrypted"] is True
        assert vol["State"] == "in-use"
    assert sorted(v["Size"] for v in by_kind["root"]) == [30, 30]
    assert sorted(v["Size"] for v in by_kind["data"]) == [300, 300]
    instance_tags = {i["InstanceId"]: tags(i) for i in live_instances(ec2, CLUSTER)}
    for vol in by_kind["data"]:
        owner = vol["Attachments"][0]["InstanceId"]
        assert tags(vol)["slm:instance_id"] == owner
        assert instance_tags[owner]["slm:data_volume_id"] == vol["VolumeId"]


def test_security_group_only_llama_port_from_lb_and_cidr(provisioned, aws_client, aws_network):
    groups = tagged(aws_client("ec2"), "security_groups", CLUSTER)
    assert len(groups) == 1
    sg = groups[0]
    assert sg["GroupName"] == f"{CLUSTER}-llm-server"
    assert sg["VpcId"] == aws_network["vpc_id"]
    rules = sg["IpPermissions"]
    assert rules, "ingress expected on the server port"
    sources = set()
    for rule in rules:
        assert rule["IpProtocol"] == "tcp"
        assert (rule["FromPort"], rule["ToPort"]) == (8080, 8080), "only the llama-server port, no 22"
        sources |= {r["CidrIp"] for r in rule.get("IpRanges", [])}
        sources |= {p["GroupId"] for p in rule.get("UserIdGroupPairs", [])}
        assert not rule.get("Ipv6Ranges")
    assert sources == {ALLOWED_CIDR, aws_network["alb_sg_id"]}
    assert any(r["IpProtocol"] == "-1" for r in sg["IpPermissionsEgress"]), "egress all"
    for inst in live_instances(aws_client("ec2"), CLUSTER):
        assert [g["GroupId"] for g in inst["SecurityGroups"]] == [sg["GroupId"]]


def test_instance_profile_with_ssm_policy(provisioned, aws_client):
    iam = aws_client("iam")
    role_name = f"{CLUSTER}-llm-server-ssm"
    profile = iam.get_instance_profile(InstanceProfileName=role_name)["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == [role_name]
    attached = iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
    assert SSM_POLICY in [p["PolicyArn"] for p in attached]
    trust = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    if isinstance(trust, str):
        trust = json.loads(trust)
    assert trust["Statement"][0]["Principal"]["Service"] == "ec2.amazonaws.com"


def test_target_group_health_check_and_registrations(provisioned, aws_client):
    elbv2 = aws_client("elbv2")
    tg = elbv2.describe_target_groups(Names=[f"{CLUSTER}-tg"])["TargetGroups"][0]
    assert tg["HealthCheckPath"] == "/health"
    assert tg["Port"] == 8080
    assert tg["TargetType"] == "instance"
    health = elbv2.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"]
    registered = {(h["Target"]["Id"], h["Target"]["Port"]) for h in health}
    expected = {(i["InstanceId"], 8080) for i in live_instances(aws_client("ec2"), CLUSTER)}
    assert registered == expected


def test_second_run_changes_nothing(provisioned, aws_env, aws_client):
    ec2 = aws_client("ec2")
    before_instances = sorted(i["InstanceId"] for i in live_instances(ec2, CLUSTER))
    before_volumes = sorted(v["VolumeId"] for v in tagged(ec2, "volumes", CLUSTER))
    _rc, output, recap = run_playbook(aws_env, "provision.yml", provisioned["extra"])
    assert recap["changed"] == 0, output[-4000:]
    assert recap["failed"] == 0
    assert sorted(i["InstanceId"] for i in live_instances(ec2, CLUSTER)) == before_instances
    assert sorted(v["VolumeId"] for v in tagged(ec2, "volumes", CLUSTER)) == before_volumes
    assert len(tagged(ec2, "security_groups", CLUSTER)) == 1


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"ec2_provision_count": 0}, "ec2_provision_count=0 must be"),
        ({"ec2_provision_volume_type": "io1"}, "ec2_provision_volume_type must be one of"),
        ({"ec2_provision_cluster_name": "Bad_Name"}, "ec2_provision_cluster_name='Bad_Name' is not valid"),
        ({"ec2_provision_vpc_id": ""}, "ec2_provision_vpc_id ('') and ec2_provision_subnet_id"),
        ({"ec2_provision_ingress_cidrs": ["0.0.0.0/0"]}, "0.0.0.0/0 is refused"),
        ({"ec2_provision_subnet_id": "OTHER"}, "not in ec2_provision_vpc_id="),
        ({"ec2_provision_ami_id": "ami-0123456789abcdef0"}, "ami-0123456789abcdef0 does not exist"),
    ],
    ids=["count-0", "volume-type", "cluster-name", "no-vpc", "open-cidr", "subnet-of-other-vpc", "unknown-ami"],
)
def test_bad_input_is_refused_before_anything_is_made(
    override, message, aws_moto_server, aws_env, aws_network, aws_client
):
    cluster = "slm-it-bad"
    extra = aws_vars(aws_moto_server, aws_network, cluster) | override
    if override.get("ec2_provision_subnet_id") == "OTHER":
        extra["ec2_provision_subnet_id"] = aws_network["other_subnet_id"]
    rc, output, _recap = run_playbook(aws_env, "provision.yml", extra, check=False)
    assert rc != 0
    assert message in " ".join(output.split()), output[-3000:]
    ec2 = aws_client("ec2")
    assert live_instances(ec2, cluster) == []
    assert tagged(ec2, "security_groups", cluster) == []


# ---------------------------------------------------------------- inventory


def list_inventory(env):
    """`ansible-inventory --list` of the aws_ec2 inventory, unwrapped."""
    proc = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", "inventories/aws/slm.aws_ec2.yml", "--list"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return unwrap(json.loads(proc.stdout))


def test_inventory_lists_hosts_with_ssm_connection(provisioned, aws_moto_server, aws_env, aws_client):
    env = aws_env | {"AWS_URL": aws_moto_server, "SLM_CLUSTER": CLUSTER}
    inventory = list_inventory(env)
    instances = {i["InstanceId"]: i for i in live_instances(aws_client("ec2"), CLUSTER)}
    hostvars = inventory["_meta"]["hostvars"]
    assert set(hostvars) == set(instances), "only this cluster's running instances, named by instance id"
    for group in ("role_llm_server", "az_us_east_1a", "llm_servers"):
        assert set(inventory[group]["hosts"]) == set(instances), group
    for host, hv in hostvars.items():
        assert hv["ansible_connection"] == "amazon.aws.aws_ssm"
        assert hv["ansible_aws_ssm_instance_id"] == host
        assert hv["ansible_aws_ssm_region"] == "us-east-1"
        assert hv["ansible_aws_ssm_bucket_name"] == SSM_BUCKET
        assert hv["storage_volume_id"] == tags(instances[host])["slm:data_volume_id"]
        assert hv["storage_volume_id"].startswith("vol-")


def test_inventory_of_another_cluster_is_empty(provisioned, aws_moto_server, aws_env):
    env = aws_env | {"AWS_URL": aws_moto_server, "SLM_CLUSTER": "no-such-cluster"}
    assert list_inventory(env)["_meta"]["hostvars"] == {}


# ---------------------------------------------------------------- cleanup


def cleanup_vars(server, network):
    return {"aws_endpoint_url": server, "aws_region": network["region"]}


def test_cleanup_without_cluster_name_refuses(provisioned, aws_moto_server, aws_env, aws_network, aws_client):
    rc, output, recap = run_playbook(
        aws_env, "cleanup.yml", cleanup_vars(aws_moto_server, aws_network) | {"cleanup_confirm": True}, check=False
    )
    assert rc != 0
    assert "ec2_cleanup_cluster_name is empty" in " ".join(output.split())
    assert recap["changed"] == 0
    assert len(live_instances(aws_client("ec2"), CLUSTER)) == 2


def test_cleanup_without_confirm_only_lists(provisioned, aws_moto_server, aws_env, aws_network, aws_client):
    ec2 = aws_client("ec2")
    ids = sorted(i["InstanceId"] for i in live_instances(ec2, CLUSTER))
    _rc, output, recap = run_playbook(
        aws_env, "cleanup.yml", cleanup_vars(aws_moto_server, aws_network) | {"slm_cluster": CLUSTER}
    )
    assert recap["changed"] == 0
    flat = " ".join(output.split())
    assert "dry run, would delete" in flat
    for instance_id in ids:
        assert instance_id in flat
    assert sorted(i["InstanceId"] for i in live_instances(ec2, CLUSTER)) == ids
    assert all(i["State"]["Name"] == "running" for i in live_instances(ec2, CLUSTER))
    assert len(tagged(ec2, "volumes", CLUSTER)) == 4
    assert len(tagged(ec2, "security_groups", CLUSTER)) == 1


def test_cleanup_with_confirm_leaves_nothing(provisioned, aws_moto_server, aws_env, aws_network, aws_client):
    _rc, _output, recap = run_playbook(
        aws_env,
        "cleanup.yml",
        cleanup_vars(aws_moto_server, aws_network) | {"ec2_cleanup_cluster_name": CLUSTER, "cleanup_confirm": True},
    )
    assert recap["changed"] > 0
    ec2 = aws_client("ec2")
    assert live_instances(ec2, CLUSTER) == []
    assert tagged(ec2, "volumes", CLUSTER) == []
    assert tagged(ec2, "security_groups", CLUSTER) == []
    iam = aws_client("iam")
    role_name = f"{CLUSTER}-llm-server-ssm"
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=role_name)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_instance_profile(InstanceProfileName=role_name)
    elbv2 = aws_client("elbv2")
    names = [tg["TargetGroupName"] for tg in elbv2.describe_target_groups()["TargetGroups"]]
    assert f"{CLUSTER}-tg" not in names
    # the load balancer's own security group is not the cluster's
    assert ec2.describe_security_groups(GroupIds=[aws_network["alb_sg_id"]])["SecurityGroups"]


def test_gp2_kms_kept_data_volume_is_deleted_by_cleanup(
    aws_moto_server, aws_env, aws_network, aws_client, aws_fake_images
):
    """Other branches: explicit image, gp2 (Outposts), KMS key, DeleteOnTermination=false."""
    key_arn = aws_client("kms").create_key(Description="slm-it")["KeyMetadata"]["Arn"]
    extra = aws_vars(aws_moto_server, aws_network, CLUSTER_B) | {
        "ec2_provision_ami_id": aws_fake_images["rhel9_old"]["ami_id"],
        "ec2_provision_volume_type": "gp2",
        "ec2_provision_kms_key_id": key_arn,
        "ec2_provision_data_volume_delete_on_termination": False,
    }
    run_playbook(aws_env, "provision.yml", extra)
    ec2 = aws_client("ec2")
    (inst,) = live_instances(ec2, CLUSTER_B)
    assert inst["ImageId"] == aws_fake_images["rhel9_old"]["ami_id"]
    volumes = tagged(ec2, "volumes", CLUSTER_B)
    assert sorted(v["Size"] for v in volumes) == [30, 300]
    assert {v["VolumeType"] for v in volumes} == {"gp2"}
    assert {v.get("KmsKeyId") for v in volumes} == {key_arn}
    data_id = tags(inst)["slm:data_volume_id"]

    _rc, output, _recap = run_playbook(
        aws_env,
        "cleanup.yml",
        cleanup_vars(aws_moto_server, aws_network) | {"slm_cluster": CLUSTER_B, "cleanup_confirm": True},
    )
    # the data volume outlived its instance and cleanup deleted it
    assert data_id in output
    assert live_instances(ec2, CLUSTER_B) == []
    assert tagged(ec2, "volumes", CLUSTER_B) == []
    assert tagged(ec2, "security_groups", CLUSTER_B) == []
