"""What slm.edge.repos, slm.edge.host_prep and slm.edge.nvidia render per OS.

The RHEL-family paths cannot run on the Debian test hosts, so these tests do
what the roles do, with Ansible's own templating: load defaults/main.yml,
vars/main.yml and the vars file first_found picks (the candidate list is read
from the role's tasks/set_vars.yml), then template the repository ids, URLs,
package names, module streams, task arguments and templates for given facts.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROLES = Path(__file__).resolve().parents[3] / "roles"
LOADER = DataLoader()


def _facts(distribution, os_family, version, release, arch="x86_64", kernel=None):
    return {
        "distribution": distribution,
        "os_family": os_family,
        "distribution_version": version,
        "distribution_major_version": version.split(".")[0],
        "distribution_release": release,
        "architecture": arch,
        "kernel": kernel or ("5.14.0-427.13.1.el9_4." + arch if os_family == "RedHat" else "6.1.0-26-cloud-amd64"),
    }


RHEL9 = _facts("RedHat", "RedHat", "9.4", "Plow")
RHEL9_ARM = _facts("RedHat", "RedHat", "9.4", "Plow", arch="aarch64")
ROCKY9 = _facts("Rocky", "RedHat", "9.4", "Blue Onyx")
ALMA9 = _facts("AlmaLinux", "RedHat", "9.4", "Seafoam Ocelot")
CENTOS9 = _facts("CentOS", "RedHat", "9", "Stream")
DEBIAN12 = _facts("Debian", "Debian", "12.7", "bookworm")
UBUNTU2204 = _facts("Ubuntu", "Debian", "22.04", "jammy", kernel="6.8.0-1015-aws")
UBUNTU2404 = _facts("Ubuntu", "Debian", "24.04", "noble", kernel="6.8.0-1016-aws")
UBUNTU2404_ARM = _facts("Ubuntu", "Debian", "24.04", "noble", arch="aarch64", kernel="6.8.0-1016-aws")
SUPPORTED = {
    "rhel9": RHEL9,
    "rhel9-arm": RHEL9_ARM,
    "rocky9": ROCKY9,
    "alma9": ALMA9,
    "centos9": CENTOS9,
    "debian12": DEBIAN12,
    "ubuntu2204": UBUNTU2204,
    "ubuntu2404": UBUNTU2404,
    "ubuntu2404-arm": UBUNTU2404_ARM,
}
UNSUPPORTED = {
    "rhel8": _facts("RedHat", "RedHat", "8.10", "Ootpa"),
    "debian11": _facts("Debian", "Debian", "11.11", "bullseye"),
    "ubuntu2004": _facts("Ubuntu", "Debian", "20.04", "focal"),
    "fedora40": _facts("Fedora", "RedHat", "40", ""),
    "suse15": _facts("SLES", "Suse", "15.6", ""),
}


def _load(path: Path):
    return LOADER.load_from_file(str(path), trusted_as_template=True) or {}


def _first_found(role: str, facts: dict) -> Path:
    """The vars file the role's first_found lookup picks for these facts."""
    tasks = _load(ROLES / role / "tasks" / "set_vars.yml")
    include = next(t for t in tasks if "ansible.builtin.include_vars" in t)
    candidates = next(iter(include["vars"].values()))["files"]
    templar = Templar(loader=LOADER, variables={"ansible_facts": facts})
    for name in templar.template(candidates):
        path = ROLES / role / "vars" / name
        if path.is_file():
            return path
    raise AssertionError(f"no vars file for {facts}")


class Role:
    """A role's variables as Ansible sees them on a host with these facts."""

    def __init__(self, role: str, facts: dict, **extra):
        self.role = role
        # A role without OS-specific vars (no tasks/set_vars.yml) has defaults and vars/main.yml only.
        has_os_vars = (ROLES / role / "tasks" / "set_vars.yml").exists()
        self.vars_file = _first_found(role, facts) if has_os_vars else None
        variables = {}
        for path in (ROLES / role / "defaults" / "main.yml", ROLES / role / "vars" / "main.yml", self.vars_file):
            if path is not None:
                variables.update(_load(path))
        variables.update(extra)
        variables.update(ansible_facts=facts, ansible_managed="Ansible managed", inventory_hostname="host1")
        self.templar = Templar(loader=LOADER, variables=variables)

    def __getitem__(self, name: str):
        return self.templar.template(trust_as_template("{{ " + name + " }}"))

    def true(self, expression: str) -> bool:
        return self.templar.evaluate_conditional(trust_as_template(expression))

    def template(self, name: str) -> str:
        text = (ROLES / self.role / "templates" / name).read_text()
        return self.templar.template(trust_as_template(text))

    def task_args(self, tasks_file: str, module: str) -> dict:
        """The templated arguments of the first task calling `module` in tasks/<tasks_file>."""

        def walk(tasks):
            for task in tasks:
                if module in task:
                    yield task
                for key in ("block", "rescue", "always"):
                    yield from walk(task.get(key, []))

        task = next(walk(_load(ROLES / self.role / "tasks" / tasks_file)))
        return self.templar.template({k: v for k, v in task[module].items() if v != "{{ omit }}"})


# ---------------------------------------------------------------- OS selection
@pytest.mark.parametrize(
    ("facts", "repos", "host_prep", "nvidia"),
    [
        (RHEL9, "RedHat.yml", "RedHat.yml", "RedHat.yml"),
        (ROCKY9, "Rocky.yml", "RedHat.yml", "RedHat.yml"),
        (ALMA9, "AlmaLinux.yml", "RedHat.yml", "RedHat.yml"),
        (CENTOS9, "CentOS.yml", "RedHat.yml", "RedHat.yml"),
        (DEBIAN12, "Debian.yml", "Debian.yml", "Debian.yml"),
        (UBUNTU2404, "Ubuntu.yml", "Ubuntu.yml", "Ubuntu.yml"),
        (UNSUPPORTED["suse15"], "default.yml", "default.yml", "default.yml"),
    ],
)
def test_first_found_picks_the_os_file(facts, repos, host_prep, nvidia):
    assert _first_found("repos", facts).name == repos
    assert _first_found("host_prep", facts).name == host_prep
    assert _first_found("nvidia", facts).name == nvidia


def _supported(role: str, facts: dict) -> bool:
    prefix = {"repos": "__repos", "host_prep": "__host_prep", "nvidia": "__nvidia"}[role]
    r = Role(role, facts)
    tasks = _load(ROLES / role / "tasks" / "preflight.yml")
    checks = [t["ansible.builtin.assert"]["that"] for t in tasks if "supported" in t["name"]]
    assert len(checks) == 2, "expected an OS and an architecture check"
    assert any(f"{prefix}_supported" in str(c) for c in checks)
    return all(r.true(c) for that in checks for c in that)


@pytest.mark.parametrize("role", ["repos", "host_prep", "nvidia"])
@pytest.mark.parametrize("name", sorted(SUPPORTED))
def test_preflight_accepts_supported_systems(role, name):
    assert _supported(role, SUPPORTED[name])


@pytest.mark.parametrize("role", ["repos", "host_prep", "nvidia"])
@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_preflight_refuses_other_systems(role, name):
    assert not _supported(role, UNSUPPORTED[name])


@pytest.mark.parametrize("role", ["repos", "host_prep", "nvidia"])
def test_preflight_refuses_other_architectures(role):
    assert not _supported(role, _facts("RedHat", "RedHat", "9.4", "Plow", arch="ppc64le"))


@pytest.mark.parametrize("role", ["repos", "host_prep", "nvidia"])
def test_preflight_messages_name_what_is_supported(role):
    text = (ROLES / role / "tasks" / "preflight.yml").read_text()
    for name in ("RHEL 9", "Rocky Linux 9", "AlmaLinux 9", "Debian 12", "Ubuntu 22.04 and 24.04"):
        assert name in text


# ---------------------------------------------------------------- repos: CodeReady Builder
@pytest.mark.parametrize(
    ("facts", "extra", "method", "tool", "repo_id"),
    [
        (RHEL9, {}, "subscription-manager", "rhsm", "codeready-builder-for-rhel-9-x86_64-rpms"),
        (RHEL9_ARM, {}, "subscription-manager", "rhsm", "codeready-builder-for-rhel-9-aarch64-rpms"),
        (RHEL9, {"__repos_rhui_detected": True}, "rhui", "dnf", "codeready-builder-for-rhel-9-rhui-rpms"),
        (RHEL9_ARM, {"__repos_rhui_detected": True}, "rhui", "dnf", "codeready-builder-for-rhel-9-rhui-rpms"),
        (RHEL9, {"repos_crb_method": "rhui"}, "rhui", "dnf", "codeready-builder-for-rhel-9-rhui-rpms"),
        (ROCKY9, {}, "crb", "dnf", "crb"),
        (ALMA9, {}, "crb", "dnf", "crb"),
        (CENTOS9, {}, "crb", "dnf", "crb"),
        (RHEL9, {"repos_crb_repo_id": "my-crb-mirror"}, "subscription-manager", "rhsm", "my-crb-mirror"),
    ],
)
def test_codeready_builder(facts, extra, method, tool, repo_id):
    r = Role("repos", facts, **extra)
    assert r["__repos_crb_method"] == method
    assert r["__repos_crb_tool"] == tool
    assert r["__repos_crb_repo_id"] == repo_id
    assert method in r["__repos_crb_methods_allowed"]
    if tool == "rhsm":
        assert r.task_args("crb_rhsm.yml", "community.general.rhsm_repository") == {
            "name": repo_id,
            "state": "enabled",
        }
    else:
        assert r.task_args("crb_dnf.yml", "community.general.dnf_config_manager") == {
            "name": repo_id,
            "state": "enabled",
        }


def test_codeready_builder_method_must_fit_the_distribution():
    assert "crb" not in Role("repos", RHEL9)["__repos_crb_methods_allowed"]
    assert "subscription-manager" not in Role("repos", ROCKY9)["__repos_crb_methods_allowed"]


def test_rhui_detection_inputs():
    r = Role("repos", RHEL9)
    assert r["__repos_rhui_probe"] is True
    assert r["__repos_rhui_packages_prefix"] == "rh-amazon-rhui-client"
    assert "redhat-rhui*.repo" in r["__repos_rhui_repo_file_patterns"]
    assert Role("repos", ROCKY9)["__repos_rhui_probe"] is False


# ---------------------------------------------------------------- repos: EPEL
@pytest.mark.parametrize("facts", [RHEL9, RHEL9_ARM, ROCKY9, ALMA9, CENTOS9])
def test_epel_release_package_and_key(facts):
    r = Role("repos", facts)
    assert r["repos_epel_release_url"] == "https://dl.fedoraproject.org/pub/epel/epel-release-latest-9.noarch.rpm"
    assert r["repos_epel_gpg_key_url"] == "https://dl.fedoraproject.org/pub/epel/RPM-GPG-KEY-EPEL-9"
    assert r.task_args("dnf.yml", "ansible.builtin.rpm_key") == {
        "key": "https://dl.fedoraproject.org/pub/epel/RPM-GPG-KEY-EPEL-9",
        "fingerprint": "FF8AD1344597106ECE813B918A3872BF3228467C",
        "state": "present",
    }
    args = r.task_args("dnf.yml", "ansible.builtin.dnf")
    assert args == {"name": r["repos_epel_release_url"], "state": "present"}
    assert "disable_gpg_check" not in (ROLES / "repos" / "tasks" / "dnf.yml").read_text()


def test_epel_key_is_imported_before_the_release_package():
    tasks = _load(ROLES / "repos" / "tasks" / "dnf.yml")
    epel = next(t for t in tasks if t["name"] == "EPEL")["block"]
    modules = [next(k for k in t if k.startswith("ansible.builtin.")) for t in epel]
    assert modules == ["ansible.builtin.rpm_key", "ansible.builtin.dnf"]


# ---------------------------------------------------------------- repos: CUDA
CUDA = "https://developer.download.nvidia.com/compute/cuda/repos"


@pytest.mark.parametrize(
    ("facts", "distro", "arch"),
    [(RHEL9, "rhel9", "x86_64"), (RHEL9_ARM, "rhel9", "sbsa"), (ROCKY9, "rhel9", "x86_64"), (ALMA9, "rhel9", "x86_64")],
)
def test_cuda_yum_repository(facts, distro, arch):
    r = Role("repos", facts)
    assert r["__repos_cuda_upstream_repo_file_url"] == f"{CUDA}/{distro}/{arch}/cuda-{distro}.repo"
    assert r.task_args("dnf.yml", "ansible.builtin.yum_repository") == {
        "name": f"cuda-{distro}-{arch}",
        "file": f"cuda-{distro}",
        "description": f"cuda-{distro}-{arch}",
        "baseurl": f"{CUDA}/{distro}/{arch}",
        "gpgcheck": True,
        "gpgkey": f"{CUDA}/{distro}/{arch}/D42D0685.pub",
        "enabled": True,
        "mode": "0644",
    }
    keys = []
    for task in _load(ROLES / "repos" / "tasks" / "dnf.yml"):
        for sub in task.get("block", []):
            if "ansible.builtin.rpm_key" in sub:
                keys.append(r.templar.template(sub["ansible.builtin.rpm_key"]["key"]))
    assert f"{CUDA}/{distro}/{arch}/D42D0685.pub" in keys


@pytest.mark.parametrize(
    ("facts", "distro", "arch"),
    [
        (DEBIAN12, "debian12", "x86_64"),
        (UBUNTU2204, "ubuntu2204", "x86_64"),
        (UBUNTU2404, "ubuntu2404", "x86_64"),
        (UBUNTU2404_ARM, "ubuntu2404", "sbsa"),
    ],
)
def test_cuda_apt_source(facts, distro, arch):
    r = Role("repos", facts)
    assert r["__repos_cuda_repo_url"] == f"{CUDA}/{distro}/{arch}"
    assert r["__repos_cuda_gpg_key_url"] == f"{CUDA}/{distro}/{arch}/3bf863cc.pub"
    assert r["__repos_cuda_apt_source"] == f"/etc/apt/sources.list.d/cuda-{distro}-{arch}.sources"
    assert r.task_args("apt.yml", "ansible.builtin.get_url")["url"] == f"{CUDA}/{distro}/{arch}/3bf863cc.pub"
    body = [line for line in r.template("cuda.sources.j2").splitlines() if line and not line.startswith("#")]
    assert body == [
        "Types: deb",
        f"URIs: {CUDA}/{distro}/{arch}/",
        "Suites: /",
        "Signed-By: /etc/apt/keyrings/cuda-archive-keyring.asc",
    ]
    pin = [line for line in r.template("cuda-repository-pin.j2").splitlines() if line and not line.startswith("#")]
    assert pin == ["Package: *", "Pin: release l=NVIDIA CUDA", "Pin-Priority: 600"]


def test_cuda_templates_start_with_ansible_managed():
    for role, name in [("repos", "cuda.sources.j2"), ("repos", "cuda-repository-pin.j2")]:
        assert Role(role, DEBIAN12).template(name).startswith("#\n# Ansible managed")
    for name in ("cuda.sh.j2", "cuda.conf.j2"):
        assert Role("nvidia", RHEL9).template(name).startswith("#\n# Ansible managed")


def test_cuda_mirror_and_overrides():
    r = Role("repos", DEBIAN12, repos_cuda_base_url="file:///srv/cuda-mirror/")
    assert r["__repos_cuda_repo_url"] == "file:///srv/cuda-mirror/debian12/x86_64"
    assert r["__repos_cuda_gpg_key_url"] == "file:///srv/cuda-mirror/debian12/x86_64/3bf863cc.pub"
    r = Role("repos", ROCKY9, repos_cuda_distro="rhel10", repos_cuda_arch="sbsa")
    assert r["__repos_cuda_repo_url"] == f"{CUDA}/rhel10/sbsa"
    r = Role("repos", RHEL9, repos_cuda_repo_url="https://mirror.example/cuda/", repos_cuda_gpg_key_url="https://k/key")
    assert r["__repos_cuda_repo_url"] == "https://mirror.example/cuda"
    assert r["__repos_cuda_gpg_key_url"] == "https://k/key"


# ---------------------------------------------------------------- repos: Debian components
def _components_regexps(facts, component):
    r = Role("repos", facts, item=[{"item": "/etc/apt/sources.list"}, component])
    tasks = _load(ROLES / "repos" / "tasks" / "apt.yml")
    block = next(t for t in tasks if t["name"] == "Debian components")["block"]
    found = {}
    for task in block:
        if "ansible.builtin.replace" in task:
            r.templar.available_variables = {**r.templar.available_variables, **task.get("vars", {})}
            args = r.templar.template(task["ansible.builtin.replace"])
            kind = "deb822" if "deb822" in task["name"] else "oneline"
            found[kind] = (args["regexp"], args["replace"])
    return found


def _apply(regexp, replace, text):
    return re.compile(regexp, re.MULTILINE).sub(replace, text)


KEYRING = "[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]"


def test_debian_components_one_line_sources():
    regexp, replace = _components_regexps(DEBIAN12, "contrib")["oneline"]
    before = (
        "deb http://deb.debian.org/debian bookworm main\n"
        f"deb {KEYRING} http://deb.debian.org/debian bookworm-updates main\n"
        "deb http://security.debian.org/debian-security bookworm-security main contrib\n"
        "deb https://download.example/repo stable main\n"
        "# deb http://deb.debian.org/debian bookworm main\n"
    )
    after = _apply(regexp, replace, before)
    assert after.splitlines() == [
        "deb http://deb.debian.org/debian bookworm main contrib",
        f"deb {KEYRING} http://deb.debian.org/debian bookworm-updates main contrib",
        "deb http://security.debian.org/debian-security bookworm-security main contrib",
        "deb https://download.example/repo stable main",
        "# deb http://deb.debian.org/debian bookworm main",
    ]
    assert _apply(regexp, replace, after) == after


def test_debian_components_deb822_sources():
    found = _components_regexps(DEBIAN12, "non-free")
    regexp, replace = found["deb822"]
    before = (
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main non-free-firmware\n"
    )
    after = _apply(regexp, replace, before)
    assert "Components: main non-free-firmware non-free\n" in after
    assert _apply(regexp, replace, after) == after


# ---------------------------------------------------------------- host_prep
SEED_RHEL = ["ccache", "cmake", "gcc-c++", "git", "git-lfs", "htop", "python3-pip", "unzip", "wget", "dkms"]
SEED_RHEL += ["elfutils-libelf-devel"]
SEED_DEBIAN = ["build-essential", "ccache", "cmake", "git", "git-lfs", "htop", "python3-pip", "python3-venv"]
SEED_DEBIAN += ["unzip", "wget", "dkms", "libelf-dev"]


@pytest.mark.parametrize("facts", [RHEL9, RHEL9_ARM, ROCKY9, ALMA9, CENTOS9])
def test_host_prep_rhel_packages(facts):
    r = Role("host_prep", facts)
    packages = r["__host_prep_packages_all"]
    assert set(SEED_RHEL) <= set(packages)
    assert "yum-utils" in packages  # needs-restarting
    assert not {"libglvnd-devel", "vulkan-loader-devel", "xorg-x11-server-Xorg"} & set(packages)
    kernel = facts["kernel"]
    assert r["__host_prep_kernel_packages"] == [f"kernel-devel-{kernel}", f"kernel-modules-extra-{kernel}"]
    assert r["__host_prep_reboot_check_command"] == ["needs-restarting", "-r"]
    assert r["__host_prep_dkms_service"] == "dkms"
    assert r["__host_prep_pkg_mgr"] == "dnf"
    gui = Role("host_prep", facts, host_prep_gui_packages=True)["__host_prep_packages_all"]
    assert {"libglvnd-devel", "vulkan-loader-devel", "xorg-x11-server-Xorg"} <= set(gui)


@pytest.mark.parametrize("facts", [DEBIAN12, UBUNTU2204, UBUNTU2404])
def test_host_prep_debian_packages(facts):
    r = Role("host_prep", facts, host_prep_packages_extra=["jq"])
    packages = r["__host_prep_packages_all"]
    assert set(SEED_DEBIAN) <= set(packages)
    assert packages[-1] == "jq"
    assert r["__host_prep_kernel_packages"] == [f"linux-headers-{facts['kernel']}"]
    assert r["__host_prep_reboot_flag_file"] == "/run/reboot-required"
    assert r["__host_prep_reboot_check_command"] == []
    assert r["__host_prep_dkms_service"] == ""
    gui = Role("host_prep", facts, host_prep_gui_packages=True)["__host_prep_packages_all"]
    assert {"libglvnd-dev", "libvulkan-dev", "xserver-xorg-core"} <= set(gui)


def test_host_prep_update_only_when_asked():
    for name in ("packages_dnf.yml", "packages_apt.yml"):
        tasks = _load(ROLES / "host_prep" / "tasks" / name)
        updates = [t for t in tasks if "update" in t["name"].lower() or "upgrade" in t["name"].lower()]
        updates = [t for t in updates if "refresh" not in t["name"]]
        assert updates, name
        assert all(t["when"] == "host_prep_update | bool" for t in updates), name


# ---------------------------------------------------------------- nvidia
@pytest.mark.parametrize(
    ("flavor", "branch", "stream", "apt"),
    [
        ("open", "latest", "open-dkms", "nvidia-open"),
        ("proprietary", "latest", "latest-dkms", "cuda-drivers"),
        ("open", "570", "570-open", "nvidia-open-570"),
        ("proprietary", "570", "570-dkms", "cuda-drivers-570"),
        ("proprietary", 535, "535-dkms", "cuda-drivers-535"),
    ],
)
def test_nvidia_driver_streams_and_packages(flavor, branch, stream, apt):
    extra = {"nvidia_driver_flavor": flavor, "nvidia_driver_branch": branch}
    assert Role("nvidia", RHEL9, **extra)["__nvidia_driver_module_stream"] == stream
    assert Role("nvidia", ROCKY9, **extra)["__nvidia_driver_package_list"] == [
        f"@nvidia-driver:{stream}",
        "nvidia-persistenced",
    ]
    for facts in (DEBIAN12, UBUNTU2204, UBUNTU2404):
        assert Role("nvidia", facts, **extra)["__nvidia_driver_package_list"] == [apt, "nvidia-persistenced"]


def _gpu(*capabilities):
    devices = [{"device_id": "0x0000", "compute_capability": cc} for cc in capabilities]
    return {"present": False, "count": 0, "pci_count": len(devices), "pci_devices": devices, "reason": "no driver"}


@pytest.mark.parametrize(
    ("gpu_info", "flavor"),
    [
        (_gpu(), "open"),
        (_gpu("7.5"), "open"),  # T4
        (_gpu("8.6", "8.6"), "open"),  # A10G
        (_gpu("9.0"), "open"),  # H100
        (_gpu("7.0"), "proprietary"),  # V100: no open modules before Turing
        (_gpu("7.5", "6.1"), "proprietary"),
        (_gpu(None), "open"),  # unknown model
    ],
)
def test_nvidia_auto_flavor(gpu_info, flavor):
    r = Role("nvidia", RHEL9, __nvidia_gpu_info=gpu_info)
    assert r["__nvidia_driver_flavor"] == flavor
    expected = "open-dkms" if flavor == "open" else "latest-dkms"
    assert r["__nvidia_driver_module_stream"] == expected
    forced = Role("nvidia", RHEL9, __nvidia_gpu_info=gpu_info, nvidia_driver_flavor="open")
    assert forced["__nvidia_driver_flavor"] == "open"


def test_nvidia_driver_overrides_and_persistence():
    r = Role("nvidia", DEBIAN12, nvidia_driver_packages=["nvidia-driver-cuda"], nvidia_persistence_mode=False)
    assert r["__nvidia_driver_package_list"] == ["nvidia-driver-cuda"]


@pytest.mark.parametrize(("version", "package"), [("12.8", "cuda-toolkit-12-8"), ("12.10", "cuda-toolkit-12-10")])
def test_nvidia_toolkit_package_and_paths(version, package):
    for facts in (RHEL9, DEBIAN12, UBUNTU2404_ARM):
        r = Role("nvidia", facts, nvidia_cuda_version=version)
        assert r["__nvidia_cuda_toolkit_package_list"] == [package]
        assert r["__nvidia_cuda_home"] == f"/usr/local/cuda-{version}"
        assert r["__nvidia_nvcc"] == f"/usr/local/cuda-{version}/bin/nvcc"
    r = Role("nvidia", RHEL9, nvidia_cuda_toolkit_packages=["cuda-compiler-12-8"])
    assert r["__nvidia_cuda_toolkit_package_list"] == ["cuda-compiler-12-8"]


def test_nvidia_cuda_environment_files(tmp_path):
    r = Role("nvidia", RHEL9)
    conf = [line for line in r.template("cuda.conf.j2").splitlines() if line and not line.startswith("#")]
    assert conf == ["/usr/local/cuda-12.8/lib64"]
    profile = tmp_path / "cuda.sh"
    profile.write_text(r.template("cuda.sh.j2"))
    # Sourced twice (nested login shells), the toolkit is on PATH once, in front.
    script = f'PATH=/usr/bin:/bin; . "{profile}"; . "{profile}"; printf "%s\\n%s" "$PATH" "$CUDA_HOME"'
    out = subprocess.run(["sh", "-c", script], check=True, capture_output=True, text=True).stdout.splitlines()
    assert out == ["/usr/local/cuda-12.8/bin:/usr/bin:/bin", "/usr/local/cuda-12.8"]
    out = subprocess.run(["sh", "-c", f'unset PATH; . "{profile}"; echo "$PATH"'], check=True, capture_output=True)
    assert out.stdout.decode().strip() == "/usr/local/cuda-12.8/bin"


# ---------------------------------------------------------------- role structure
@pytest.mark.parametrize("role", ["repos", "host_prep", "nvidia"])
def test_every_option_is_specified_and_documented(role):
    defaults = _load(ROLES / role / "defaults" / "main.yml")
    spec = _load(ROLES / role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert set(defaults) == set(spec)
    readme = (ROLES / role / "README.md").read_text()
    for name, option in spec.items():
        assert option.get("description"), name
        assert f"`{name}`" in readme, f"{name} missing from {role}/README.md"
        if "default" in option and isinstance(defaults[name], (bool, int, list)):
            assert option["default"] == defaults[name], name
        elif "default" in option:
            assert str(option["default"]) == str(defaults[name]), name


@pytest.mark.parametrize("role", ["repos", "host_prep", "nvidia"])
def test_internal_vars_carry_the_role_prefix(role):
    for path in (ROLES / role / "vars").glob("*.yml"):
        for name in _load(path):
            assert name.startswith(f"__{role}_"), f"{path.name}: {name}"
