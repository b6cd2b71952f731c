"""provision -> inventory -> cleanup against a moto server (no AWS account needed).

Run from the repository root:  .venv/bin/python -m pytest tests/integration/test_aws_moto.py

Cluster "slm-it" is the runbook's setup (2 instances, RHEL 9 image looked up,
gp3, target group); cluster "slm-it-b" takes the other branches (explicit
image, gp2, KMS key, HTTPS target group, data volume kept on termination)
so that cleanup has to find and delete the left-over 300 GiB volume, the
runbook's last check; cluster "slm-it-scale" scales in (refused without
ec2_provision_confirm_scale_in, then confirmed: the data volumes stay).

Every playbook run is checked for the AWS credentials of the environment
(distinctive values, see conftest.AWS_SECRETS): none may appear in the output,
and the runs that touch most run at -vvv. Tests run in file order; each cleanup
test only needs the fixtures, so any test can also run alone.
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
# written un-normalized on purpose: the security group gets 2001:db8:0:ff00::/56
ALLOWED_CIDR6 = "2001:DB8:0:FF00:0::/56"
ALLOWED_CIDR6_NORMALIZED = "2001:db8:0:ff00::/56"
CLUSTER_SCALE = "slm-it-scale"
SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
SSM_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
LIVE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"]
RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


# ---------------------------------------------------------------- helpers


def assert_no_secret(env, output):
    """None of the environment's AWS credentials, nor a telling piece of one, is in the output."""
    for key in SECRET_KEYS:
        value = env[key]
        assert len(value) >= 20, f"{key} is not distinctive enough to be searched for"
        for piece in (value, value[:12], value[-12:]):
            assert piece not in output, f"{key} (or a piece of it) appears in the output"


def run_playbook(env, playbook, extra, *, check=True, verbose=False):
    """ansible-playbook with -e for every item of `extra`; returns (rc, output, recap).

    Every run is checked for the credentials of `env` (assert_no_secret).
    """
    cmd = [str(BIN / "ansible-playbook"), f"playbooks/{playbook}"]
    if verbose:
        cmd.append("-vvv")
    for key, value in extra.items():
        cmd += ["-e", json.dumps({key: value})]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    output = proc.stdout + proc.stderr
    assert_no_secret(env, output)
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
    """First provision of cluster slm-it (at -vvv): 2 instances, image looked up, target group created."""
    extra = aws_vars(aws_moto_server, aws_network, CLUSTER) | {
        "ec2_provision_count": 2,
        "ec2_provision_ingress_cidrs": [ALLOWED_CIDR, ALLOWED_CIDR6],
        "ec2_provision_ingress_security_group_id": aws_network["alb_sg_id"],
        "ec2_provision_target_group_name": f"{CLUSTER}-tg",
        "ec2_provision_ssm_bucket_name": SSM_BUCKET,
    }
    _rc, output, recap = run_playbook(aws_env, "provision.yml", extra, verbose=True)
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
    instances = live_instances(ec2, CLUSTER)
    # the data volume outlives its instance (the default), the root volume does not
    for inst in instances:
        keep = {m["DeviceName"]: m["Ebs"]["DeleteOnTermination"] for m in inst["BlockDeviceMappings"]}
        assert keep == {"/dev/sda1": True, "/dev/sdb": False}
    instance_tags = {i["InstanceId"]: tags(i) for i in instances}
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
    sources6 = set()
    for rule in rules:
        assert rule["IpProtocol"] == "tcp"
        assert (rule["FromPort"], rule["ToPort"]) == (8080, 8080), "only the llama-server port, no 22"
        sources |= {r["CidrIp"] for r in rule.get("IpRanges", [])}
        sources |= {p["GroupId"] for p in rule.get("UserIdGroupPairs", [])}
        sources6 |= {r["CidrIpv6"] for r in rule.get("Ipv6Ranges", [])}
    assert sources == {ALLOWED_CIDR, aws_network["alb_sg_id"]}
    # the IPv6 network is an IPv6 rule, in its normalized form
    assert sources6 == {ALLOWED_CIDR6_NORMALIZED}
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
    assert (tg["Protocol"], tg["HealthCheckProtocol"]) == ("HTTP", "HTTP")
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


# what the validate entry point refuses: before any AWS call, so no AWS task runs at all
VALIDATE_REFUSALS = {
    "count-0": ({"ec2_provision_count": 0}, "ec2_provision_count=0 must be"),
    "volume-type": ({"ec2_provision_volume_type": "io1"}, "ec2_provision_volume_type must be one of"),
    "cluster-name": ({"ec2_provision_cluster_name": "Bad_Name"}, "ec2_provision_cluster_name='Bad_Name' is not valid"),
    "no-vpc": ({"ec2_provision_vpc_id": ""}, "ec2_provision_vpc_id ('') and ec2_provision_subnet_id"),
    "open-cidr": ({"ec2_provision_ingress_cidrs": ["0.0.0.0/0"]}, "0.0.0.0/0 is refused"),
    "open-cidr-10/0": (
        {"ec2_provision_ingress_cidrs": ["10.0.0.0/0"]},
        "ec2_provision_ingress_cidrs has 10.0.0.0/0 (that is 0.0.0.0/0, every IPv4 address): 0.0.0.0/0 is refused",
    ),
    "open-cidr-ipv6": ({"ec2_provision_ingress_cidrs": [ALLOWED_CIDR, "::/0"]}, "has ::/0: ::/0 is refused"),
    "cidr-host-bits": (
        {"ec2_provision_ingress_cidrs": ["10.0.0.1/8"]},
        "ec2_provision_ingress_cidrs has 10.0.0.1/8: its host bits are set; write the network 10.0.0.0/8",
    ),
    "unencrypted-without-ack": (
        {"ec2_provision_volume_encrypted": False},
        "set ec2_provision_allow_unencrypted_volumes=true as well",
    ),
}
# refused by the first AWS lookups (read-only), still before anything is made
LOOKUP_REFUSALS = {
    "subnet-of-other-vpc": ({"ec2_provision_subnet_id": "OTHER"}, "not in ec2_provision_vpc_id="),
    "unknown-ami": ({"ec2_provision_ami_id": "ami-0123456789abcdef0"}, "ami-0123456789abcdef0 does not exist"),
}
REFUSALS = VALIDATE_REFUSALS | LOOKUP_REFUSALS


def all_security_groups(ec2):
    return sorted(ec2.describe_security_groups()["SecurityGroups"], key=lambda g: g["GroupId"])


@pytest.mark.parametrize("case", list(REFUSALS))
def test_bad_input_is_refused_before_anything_is_made(case, aws_moto_server, aws_env, aws_network, aws_client):
    override, message = REFUSALS[case]
    cluster = "slm-it-bad"
    extra = aws_vars(aws_moto_server, aws_network, cluster) | override
    if override.get("ec2_provision_subnet_id") == "OTHER":
        extra["ec2_provision_subnet_id"] = aws_network["other_subnet_id"]
    ec2 = aws_client("ec2")
    groups_before = all_security_groups(ec2)
    rc, output, recap = run_playbook(aws_env, "provision.yml", extra, check=False)
    assert rc != 0
    assert message in " ".join(output.split()), output[-3000:]
    assert recap["changed"] == 0
    if case in VALIDATE_REFUSALS:
        assert "Look up the subnet" not in output, "refused in validate, before any AWS call"
    assert live_instances(ec2, cluster) == []
    # no security group made, none changed (the rules of every group are as they were)
    assert all_security_groups(ec2) == groups_before


def test_unencrypted_volumes_with_the_acknowledgement_pass_validation(aws_moto_server, aws_env, aws_network):
    """With the acknowledgement the refusal asks for, validation passes: the run gets as far as the image
    lookup, which this unknown image id stops, so nothing is made."""
    extra = aws_vars(aws_moto_server, aws_network, "slm-it-bad") | {
        "ec2_provision_volume_encrypted": False,
        "ec2_provision_allow_unencrypted_volumes": True,
        "ec2_provision_ami_id": "ami-0123456789abcdef0",
    }
    rc, output, _recap = run_playbook(aws_env, "provision.yml", extra, check=False)
    assert rc != 0
    flat = " ".join(output.split())
    assert "ami-0123456789abcdef0 does not exist" in flat, output[-3000:]
    assert "ec2_provision_allow_unencrypted_volumes" not in flat


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
    """Other branches: explicit image, gp2 (Outposts), KMS key, HTTPS target group, data volume kept (default)."""
    key_arn = aws_client("kms").create_key(Description="slm-it")["KeyMetadata"]["Arn"]
    extra = aws_vars(aws_moto_server, aws_network, CLUSTER_B) | {
        "ec2_provision_ami_id": aws_fake_images["rhel9_old"]["ami_id"],
        "ec2_provision_volume_type": "gp2",
        "ec2_provision_kms_key_id": key_arn,
        "ec2_provision_target_group_name": f"{CLUSTER_B}-tg",
        "ec2_provision_target_group_protocol": "HTTPS",
    }
    run_playbook(aws_env, "provision.yml", extra)
    elbv2 = aws_client("elbv2")
    tg = elbv2.describe_target_groups(Names=[f"{CLUSTER_B}-tg"])["TargetGroups"][0]
    # the health check follows the target group's protocol unless set
    assert (tg["Protocol"], tg["HealthCheckProtocol"], tg["HealthCheckPath"]) == ("HTTPS", "HTTPS", "/health")
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
    assert f"{CLUSTER_B}-tg" not in [t["TargetGroupName"] for t in elbv2.describe_target_groups()["TargetGroups"]]


def test_https_health_check_on_an_http_target_group(aws_moto_server, aws_env, aws_network, aws_client):
    """The health check protocol can be set on its own: HTTP traffic, HTTPS check."""
    cluster = "slm-it-hc"
    extra = aws_vars(aws_moto_server, aws_network, cluster) | {
        "ec2_provision_target_group_name": f"{cluster}-tg",
        "ec2_provision_health_check_protocol": "HTTPS",
        "ec2_provision_health_check_path": "/v1/health",
    }
    run_playbook(aws_env, "provision.yml", extra)
    elbv2 = aws_client("elbv2")
    tg = elbv2.describe_target_groups(Names=[f"{cluster}-tg"])["TargetGroups"][0]
    assert (tg["Protocol"], tg["HealthCheckProtocol"], tg["HealthCheckPath"]) == ("HTTP", "HTTPS", "/v1/health")


# ---------------------------------------------------------------- scale-in


def data_volume(ec2, instance):
    (mapping,) = [m for m in instance["BlockDeviceMappings"] if m["DeviceName"] == "/dev/sdb"]
    return ec2.describe_volumes(VolumeIds=[mapping["Ebs"]["VolumeId"]])["Volumes"][0]


@pytest.fixture(scope="module")
def scale_cluster(aws_moto_server, aws_env, aws_network, aws_client):
    """Cluster slm-it-scale with 2 instances: the older one launched with DeleteOnTermination=true on its
    data volume (as the role did before the default became false), the newer one with the default."""
    base = aws_vars(aws_moto_server, aws_network, CLUSTER_SCALE)
    run_playbook(aws_env, "provision.yml", base | {"ec2_provision_data_volume_delete_on_termination": True})
    ec2 = aws_client("ec2")
    (old,) = live_instances(ec2, CLUSTER_SCALE)
    run_playbook(aws_env, "provision.yml", base | {"ec2_provision_count": 2})
    instances = live_instances(ec2, CLUSTER_SCALE)
    assert len(instances) == 2
    (new,) = [i for i in instances if i["InstanceId"] != old["InstanceId"]]
    return {"base": base, "old": old["InstanceId"], "new": new["InstanceId"]}


def test_scale_in_without_confirmation_lists_the_instance_and_changes_nothing(scale_cluster, aws_env, aws_client):
    ec2 = aws_client("ec2")
    volumes_before = sorted((v["VolumeId"], v["State"]) for v in tagged(ec2, "volumes", CLUSTER_SCALE))
    assert len(volumes_before) == 4
    rc, output, recap = run_playbook(
        aws_env, "provision.yml", scale_cluster["base"] | {"ec2_provision_count": 1}, check=False
    )
    assert rc != 0
    assert recap["changed"] == 0
    flat = " ".join(output.split())
    assert "ec2_provision_count=1, but cluster slm-it-scale has 2 instances" in flat, output[-3000:]
    # the oldest would go: named by id and Name; the other is not listed
    assert f"{scale_cluster['old']} (Name={CLUSTER_SCALE}-llm-server, running" in flat
    assert scale_cluster["new"] not in flat
    assert "Nothing was changed" in flat
    assert "ec2_provision_confirm_scale_in=true" in flat
    # before the security group, IAM or instance tasks
    assert "Create the security group" not in output
    assert "Remember the security group's id" not in output
    instances = live_instances(ec2, CLUSTER_SCALE)
    assert sorted(i["InstanceId"] for i in instances) == sorted([scale_cluster["old"], scale_cluster["new"]])
    assert {i["State"]["Name"] for i in instances} == {"running"}
    assert sorted((v["VolumeId"], v["State"]) for v in tagged(ec2, "volumes", CLUSTER_SCALE)) == volumes_before


def test_scale_in_confirmed_terminates_the_oldest_and_keeps_its_data_volume(scale_cluster, aws_env, aws_client):
    """The oldest instance deletes its data volume on termination (launched so): the role stops it and
    detaches the volume first. Run at -vvv: no credential in the output."""
    ec2 = aws_client("ec2")
    (old,) = [i for i in live_instances(ec2, CLUSTER_SCALE) if i["InstanceId"] == scale_cluster["old"]]
    old_data = data_volume(ec2, old)
    assert [m["Ebs"]["DeleteOnTermination"] for m in old["BlockDeviceMappings"] if m["DeviceName"] == "/dev/sdb"] == [
        True
    ]
    _rc, output, recap = run_playbook(
        aws_env,
        "provision.yml",
        scale_cluster["base"] | {"ec2_provision_count": 1, "ec2_provision_confirm_scale_in": True},
        verbose=True,
    )
    assert recap["changed"] > 0
    assert f"terminating: {scale_cluster['old']}" in " ".join(output.split())
    assert [i["InstanceId"] for i in live_instances(ec2, CLUSTER_SCALE)] == [scale_cluster["new"]]
    (gone,) = ec2.describe_instances(InstanceIds=[scale_cluster["old"]])["Reservations"][0]["Instances"]
    assert gone["State"]["Name"] == "terminated"
    kept = ec2.describe_volumes(VolumeIds=[old_data["VolumeId"]])["Volumes"][0]
    assert kept["State"] == "available"
    assert kept["Size"] == 300
    assert tags(kept)["slm:cluster"] == CLUSTER_SCALE
    # the survivor is untouched, and a rerun at the new count changes nothing
    _rc, output, recap = run_playbook(aws_env, "provision.yml", scale_cluster["base"] | {"ec2_provision_count": 1})
    assert recap["changed"] == 0, output[-3000:]


def test_scale_in_of_an_instance_launched_with_the_default_keeps_its_data_volume(scale_cluster, aws_env, aws_client):
    """Back to 2 (a new instance), then down to 1 again: the oldest (launched with the default,
    DeleteOnTermination=false) is terminated directly and its data volume stays available."""
    ec2 = aws_client("ec2")
    run_playbook(aws_env, "provision.yml", scale_cluster["base"] | {"ec2_provision_count": 2})
    (survivor,) = [i for i in live_instances(ec2, CLUSTER_SCALE) if i["InstanceId"] == scale_cluster["new"]]
    assert {m["DeviceName"]: m["Ebs"]["DeleteOnTermination"] for m in survivor["BlockDeviceMappings"]}[
        "/dev/sdb"
    ] is False
    data = data_volume(ec2, survivor)
    _rc, output, _recap = run_playbook(
        aws_env,
        "provision.yml",
        scale_cluster["base"] | {"ec2_provision_count": 1, "ec2_provision_confirm_scale_in": True},
    )
    # terminated directly: no stop, no detach
    for step in ("Stop the instances whose data volume", "Detach those data volumes"):
        task = re.search(rf"TASK \[[^\]]*{step}[^\]]*\][^\n]*\n(.*?)(?=\nTASK |\Z)", output, re.S)
        assert task and task.group(1).strip().startswith("skipping"), (
            f"{step}: {task.group(1)[:300] if task else 'not run'}"
        )
    assert f"terminating: {scale_cluster['new']}" in " ".join(output.split())
    remaining = live_instances(ec2, CLUSTER_SCALE)
    assert len(remaining) == 1
    assert remaining[0]["InstanceId"] != scale_cluster["new"]
    assert ec2.describe_volumes(VolumeIds=[data["VolumeId"]])["Volumes"][0]["State"] == "available"


def test_cleanup_deletes_the_kept_volumes_only_when_confirmed(
    scale_cluster, aws_moto_server, aws_env, aws_network, aws_client
):
    """A dry run lists the kept data volumes and deletes nothing; confirmed (at -vvv), everything goes."""
    ec2 = aws_client("ec2")
    available = sorted(v["VolumeId"] for v in tagged(ec2, "volumes", CLUSTER_SCALE) if v["State"] == "available")
    assert len(available) == 2
    cleanup = cleanup_vars(aws_moto_server, aws_network) | {"slm_cluster": CLUSTER_SCALE}
    _rc, output, recap = run_playbook(aws_env, "cleanup.yml", cleanup)
    assert recap["changed"] == 0
    for volume_id in available:
        assert volume_id in output
    assert (
        sorted(v["VolumeId"] for v in tagged(ec2, "volumes", CLUSTER_SCALE) if v["State"] == "available") == available
    )
    _rc, output, recap = run_playbook(aws_env, "cleanup.yml", cleanup | {"cleanup_confirm": True}, verbose=True)
    assert recap["changed"] > 0
    assert live_instances(ec2, CLUSTER_SCALE) == []
    assert tagged(ec2, "volumes", CLUSTER_SCALE) == []
    assert tagged(ec2, "security_groups", CLUSTER_SCALE) == []
