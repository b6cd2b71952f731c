"""slm.edge.replica_layout: replicas per GPU when the model fits one GPU, else one process over all."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.slm.edge.plugins.filter.replicas import replica_layout

T4 = 15360  # MiB reported by nvidia-smi for a T4
G4DN_12XL = [{"index": i, "memory_total_mib": T4} for i in range(4)]
SMOLLM2_F16 = 3264  # MiB
LLAMA_70B_Q4 = 40_000


def test_small_model_on_4xt4_gets_four_pinned_replicas():
    layout = replica_layout(G4DN_12XL, SMOLLM2_F16)
    assert layout["per_gpu"] and layout["fits"]
    assert layout["instances"] == [{"id": str(i), "port": 8080 + i, "gpu": str(i)} for i in range(4)]
    assert layout["have_mib"] == T4


def test_model_larger_than_one_gpu_is_split_over_all():
    layout = replica_layout(G4DN_12XL, LLAMA_70B_Q4)
    assert not layout["per_gpu"]
    assert layout["instances"] == [{"id": "0", "port": 8080, "gpu": ""}]
    assert layout["fits"] and layout["have_mib"] == 4 * T4


def test_model_larger_than_all_gpus_does_not_fit():
    layout = replica_layout(G4DN_12XL, 80_000)
    assert not layout["fits"] and layout["need_mib"] == 81_024


def test_offloading_nothing_always_fits():
    assert replica_layout(G4DN_12XL, 80_000, gpu_layers=0)["fits"]


def test_single_gpu_and_cpu_hosts_run_one_process():
    assert replica_layout([{"index": 0, "memory_total_mib": 81559}], SMOLLM2_F16)["instances"][0]["gpu"] == ""
    cpu = replica_layout([], SMOLLM2_F16)
    assert cpu["fits"] and not cpu["per_gpu"] and cpu["have_mib"] == 0 and len(cpu["instances"]) == 1


def test_forced_modes_and_ports():
    single = replica_layout(G4DN_12XL, SMOLLM2_F16, mode="single", port=9000)
    assert single["instances"] == [{"id": "0", "port": 9000, "gpu": ""}]
    per_gpu = replica_layout(G4DN_12XL[:2], 20_000, mode="per_gpu")
    assert per_gpu["per_gpu"] and not per_gpu["fits"]


def test_mixed_gpus_use_the_smallest_and_keep_index_order():
    gpus = [{"index": 1, "memory_total_mib": 24_000}, {"index": 0, "memory_total_mib": 8_000}]
    layout = replica_layout(gpus, 7_500, headroom_mib=1024)
    assert not layout["per_gpu"]  # 8.5 GiB needed does not fit the 8 GiB card
    assert replica_layout(gpus, 6_000)["instances"][0]["gpu"] == "0"


def test_unknown_mode_is_refused():
    with pytest.raises(AnsibleFilterError, match="mode must be one of"):
        replica_layout(G4DN_12XL, 1, mode="all")
