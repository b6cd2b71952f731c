"""slm.edge.slot_plan: slots and context from the KV cache per token, the memory and the request lengths."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.slm.edge.plugins.filter.slots import kv_bytes_per_token, slot_plan

# SmolLM2-1.7B's shape: 24 layers, 32 heads, 32 KV heads, embedding 2048 (head 64), trained on 8192 tokens.
SMOLLM2 = {"block_count": 24, "head_count": 32, "head_count_kv": 32, "embedding_length": 2048, "context_length": 8192}
# The tests' tiny Llama: 2 layers, 4 heads, 2 KV heads, embedding 64, trained on 2048.
TINY = {"block_count": 2, "head_count": 4, "head_count_kv": 2, "embedding_length": 64, "context_length": 2048}
H100 = 81559  # MiB


def test_kv_bytes_per_token_follows_the_shape_and_the_cache_types():
    # 24 layers x 32 KV heads x (64 + 64) x 2 bytes
    assert kv_bytes_per_token(SMOLLM2) == 24 * 32 * 128 * 2 == 196_608
    assert kv_bytes_per_token(SMOLLM2, "q8_0", "q8_0") == 24 * 32 * 128 * 34 // 32
    assert kv_bytes_per_token({**SMOLLM2, "key_length": 128, "value_length": 96}) == 24 * 32 * (128 + 96) * 2
    assert kv_bytes_per_token({"block_count": 2}) == 0
    with pytest.raises(AnsibleFilterError, match="cache_type_k must be one of"):
        kv_bytes_per_token(SMOLLM2, "q9")


def test_auto_on_a_gpu_fills_the_memory_up_to_the_cap():
    plan = slot_plan(SMOLLM2, memory_mib=H100, model_mib=3264, headroom_mib=1024, max_parallel=16)
    # A slot of 1536 + 512 tokens costs 384 MiB: 77271 MiB hold 201 of them, the cap is 16.
    assert plan["slot_ctx"] == 2048 and plan["memory_slots"] == 201
    assert plan["parallel"] == 16 and plan["ctx_size"] == 16 * 2048
    assert plan["fits"] and plan["kv_mib"] == 6144.0
    assert "16 slots" in plan["reasons"][1] and "room for 201 slots" in plan["reasons"][1]


def test_auto_is_limited_by_the_memory_when_it_is_small():
    # A 16 GiB T4 less the model and 1 GiB leaves 11072 MiB: 28 slots of 2048 tokens would fit; a 4 GiB card 1.
    assert slot_plan(SMOLLM2, memory_mib=4096, model_mib=2600, headroom_mib=1024, max_parallel=16)["parallel"] == 1
    plan = slot_plan(SMOLLM2, memory_mib=15360, model_mib=3264, headroom_mib=1024, max_parallel=16)
    assert plan["memory_slots"] == 28 and plan["parallel"] == 16
    # q8_0 cache: twice the slots in the same memory (1.88x, its blocks carry a scale).
    q8 = slot_plan(SMOLLM2, memory_mib=7000, model_mib=3264, cache_type_k="q8_0", cache_type_v="q8_0", max_parallel=64)
    f16 = slot_plan(SMOLLM2, memory_mib=7000, model_mib=3264, max_parallel=64)
    assert (f16["parallel"], q8["parallel"]) == (7, 13)


def test_slots_never_exceed_the_trained_context_and_follow_the_request_lengths():
    plan = slot_plan(TINY, memory_mib=24000, model_mib=1, headroom_mib=2048)
    assert plan["slot_ctx"] == 2048 and plan["parallel"] == 8 and plan["ctx_size"] == 16384
    longer = slot_plan(TINY, memory_mib=24000, model_mib=1, prompt_tokens=3000)
    assert longer["slot_ctx"] == 2048 and "at most the trained context 2048" in longer["reasons"][0]
    short = slot_plan(SMOLLM2, memory_mib=H100, model_mib=3264, prompt_tokens=200, n_predict=100, max_parallel=16)
    assert short["slot_ctx"] == 512 and short["ctx_size"] == 16 * 512


def test_given_values_are_kept_and_checked_against_the_memory():
    assert slot_plan(TINY, memory_mib=24000, model_mib=1, parallel=2, ctx_size=2048)["slot_ctx"] == 1024
    plan = slot_plan(SMOLLM2, memory_mib=H100, model_mib=3264, parallel=4, ctx_size=0)
    assert (plan["parallel"], plan["ctx_size"], plan["slot_ctx"]) == (4, 8192, 2048)
    # auto slots in a given context: as many as it holds slots of the expected length.
    assert slot_plan(SMOLLM2, memory_mib=H100, model_mib=3264, ctx_size=8192)["parallel"] == 4
    too_big = slot_plan(SMOLLM2, memory_mib=8192, model_mib=3264, parallel=16, ctx_size=131072)
    assert not too_big["fits"] and too_big["kv_mib"] == 24576.0 and too_big["budget_mib"] == 3904


def test_no_memory_left_means_one_slot_that_does_not_fit():
    plan = slot_plan(TINY, memory_mib=24000, model_mib=1, headroom_mib=30000)
    assert plan["parallel"] == 1 and plan["budget_mib"] == 0 and not plan["fits"]


def test_an_unknown_shape_keeps_four_slots_and_cannot_refuse():
    plan = slot_plan({"context_length": 4096}, memory_mib=1000, model_mib=900)
    assert plan["parallel"] == 4 and plan["fits"] and plan["kv_bytes_per_token"] == 0


def test_output_until_the_end_takes_the_trained_context():
    assert slot_plan(SMOLLM2, memory_mib=H100, model_mib=3264, n_predict=-1, max_parallel=16)["slot_ctx"] == 8192


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"parallel": "four"}, "parallel must be auto or an integer"),
        ({"parallel": 0}, "parallel must be at least 1"),
        ({"slot_ctx": 8}, "slot_ctx must be at least 16"),
        ({"ctx_size": "big"}, "ctx_size must be auto or an integer"),
    ],
)
def test_bad_values_are_named(kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        slot_plan(TINY, memory_mib=1000, model_mib=1, **kwargs)


# SmolLM2-135M, the 1.7B's draft: 30 layers, 9 heads, 3 KV heads, embedding 576 (head 64).
SMOLLM2_135M = {"block_count": 30, "head_count": 9, "head_count_kv": 3, "embedding_length": 576, "context_length": 8192}


def test_a_draft_model_adds_its_kv_cache_per_token():
    alone = slot_plan(SMOLLM2, memory_mib=15360, model_mib=3264, headroom_mib=1024, max_parallel=64)
    drafted = slot_plan(
        SMOLLM2, memory_mib=15360, model_mib=3264 + 270, headroom_mib=1024, max_parallel=64, draft=SMOLLM2_135M
    )
    # 30 x 3 x 128 x 2 = 23040 bytes more per token: 219648 in all.
    assert drafted["kv_bytes_per_token"] == 196_608 + 23_040
    assert drafted["memory_slots"] < alone["memory_slots"]
    assert "with the draft's 22.5 KiB" in drafted["reasons"][1]
    # A draft of unknown shape counts as much as the served model.
    assert (
        slot_plan(SMOLLM2, memory_mib=15360, model_mib=3264, draft={"block_count": 1})["kv_bytes_per_token"]
        == 2 * 196_608
    )
