"""Unit tests for plugins/module_utils/gguf.py (GGUF header parser)."""

from __future__ import annotations

import math
import os
import re
import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gguf_writer as gw
from ansible_collections.slm.edge.plugins.module_utils import gguf

# Point LLAMA_H at llama.cpp's include/llama.h to compare the file type table with it.
LLAMA_H = Path(os.environ.get("LLAMA_H", "/nonexistent/llama.h"))


def parse(writer, tmp_path, name="model.gguf"):
    path = writer.write(tmp_path / name)
    return gguf.read_gguf(str(path))


# -- value types -------------------------------------------------------------


ALL_SCALARS = [
    ("t.uint8", gw.UINT8, 255, "uint8"),
    ("t.int8", gw.INT8, -128, "int8"),
    ("t.uint16", gw.UINT16, 65535, "uint16"),
    ("t.int16", gw.INT16, -300, "int16"),
    ("t.uint32", gw.UINT32, 4294967295, "uint32"),
    ("t.int32", gw.INT32, -2147483648, "int32"),
    ("t.float32", gw.FLOAT32, 0.1, "float32"),
    ("t.bool_true", gw.BOOL, True, "bool"),
    ("t.bool_false", gw.BOOL, False, "bool"),
    ("t.string", gw.STRING, "grüße ✓", "string"),
    ("t.uint64", gw.UINT64, 2**64 - 1, "uint64"),
    ("t.int64", gw.INT64, -(2**40), "int64"),
    ("t.float64", gw.FLOAT64, math.pi, "float64"),
]


@pytest.fixture(params=["<", ">"], ids=["little", "big"])
def every_type_file(request, tmp_path):
    writer = gw.GGUFWriter(endian=request.param)
    for key, value_type, value, _name in ALL_SCALARS:
        writer.add(key, value_type, value)
    writer.add_array("a.int32", gw.INT32, [1, -2, 3])
    writer.add_array("a.strings", gw.STRING, ["a", "bb", "x" * 600])
    writer.add_array("a.bool", gw.BOOL, [True, False])
    writer.add_array("a.float64", gw.FLOAT64, [0.5, 1.5])
    writer.add("a.nested", gw.ARRAY, (gw.ARRAY, [(gw.UINT16, [1, 2]), (gw.STRING, ["p", "q", "r"])]))
    writer.add_array("a.long_strings", gw.STRING, [f"tok{i}" for i in range(5000)])
    writer.add_array("a.long_uint64", gw.UINT64, list(range(100)))
    writer.add("a.long_nested", gw.ARRAY, (gw.ARRAY, [(gw.INT8, [1]) for _index in range(70)]))
    writer.add("after.arrays", gw.STRING, "still parsed")
    writer.add_tensor("w", (32, 4), gw.GGML_F32)
    return request.param, parse(writer, tmp_path)


def test_every_scalar_type_round_trips(every_type_file):
    endian, parsed = every_type_file
    assert parsed.byte_order == ("little" if endian == "<" else "big")
    assert parsed.version == 3
    for key, _type, value, type_name in ALL_SCALARS:
        assert parsed.value_types[key] == type_name
        if type_name == "float32":
            assert parsed.kvs[key] == 0.1  # shortest float32 repr, not 0.10000000149011612
        else:
            assert parsed.kvs[key] == value
        if type_name == "bool":
            assert parsed.kvs[key] is value


def test_short_arrays_keep_values(every_type_file):
    _endian, parsed = every_type_file
    kvs = parsed.kvs
    assert kvs["a.int32"].element_type == "int32"
    assert kvs["a.int32"].values == [1, -2, 3]
    assert kvs["a.strings"].values[:2] == ["a", "bb"]
    assert kvs["a.bool"].values == [True, False]
    assert kvs["a.float64"].values == [0.5, 1.5]
    nested = kvs["a.nested"]
    assert nested.element_type == "array"
    assert [inner.values for inner in nested.values] == [[1, 2], ["p", "q", "r"]]


def test_an_empty_array(tmp_path):
    """The format allows an empty array, which gguf-py refuses to write: a one-element one is cut to length 0."""
    writer = gw.GGUFWriter()
    writer.add_array("a.empty", gw.UINT8, [7])
    writer.add("after.empty", gw.STRING, "still parsed")
    one = struct.pack("<IIQ", gw.ARRAY, gw.UINT8, 1) + b"\x07"
    data = writer.to_bytes()
    assert data.count(one) == 1
    path = tmp_path / "empty-array.gguf"
    path.write_bytes(data.replace(one, struct.pack("<IIQ", gw.ARRAY, gw.UINT8, 0)))
    parsed = gguf.read_gguf(str(path))
    assert parsed.kvs["a.empty"].length == 0
    assert parsed.kvs["a.empty"].values == []
    assert parsed.kvs["after.empty"] == "still parsed"


def test_long_arrays_are_skipped_with_their_length(every_type_file):
    _endian, parsed = every_type_file
    kvs = parsed.kvs
    assert kvs["a.long_strings"].length == 5000
    assert kvs["a.long_strings"].values is None
    assert kvs["a.long_uint64"].length == 100
    assert kvs["a.long_uint64"].values is None
    assert kvs["a.long_nested"].length == 70
    assert kvs["a.long_nested"].values is None
    # parsing went on correctly after the skipped arrays
    assert kvs["after.arrays"] == "still parsed"
    assert [t.name for t in parsed.tensors] == ["w"]


def test_summary_metadata_has_scalars_and_array_lengths(every_type_file):
    _endian, parsed = every_type_file
    summary = gguf.summarize(parsed)
    metadata = summary["metadata"]
    assert metadata["t.uint64"] == 2**64 - 1
    assert metadata["a.long_strings"] == 5000
    assert metadata["a.int32"] == 3
    assert summary["arrays"]["a.long_strings"] == {"element_type": "string", "length": 5000, "values": None}
    assert summary["arrays"]["a.int32"]["values"] == [1, -2, 3]
    assert len(summary["arrays"]["a.strings"]["values"][2]) == 512
    assert summary["arrays"]["a.nested"]["values"] == [2, 3]
    assert summary["architecture"] is None
    assert summary["context_length"] is None
    assert summary["parameter_count"] == 128


# -- a llama-shaped model ----------------------------------------------------


def test_llama_model_summary(tmp_path):
    template = "{% for message in messages %}<|{{ message.role }}|>{{ message.content }}{% endfor %}" * 10
    writer = gw.llama_writer(context_length=2048, file_type=7, chat_template=template)
    path = writer.write(tmp_path / "tiny.gguf")
    summary = gguf.summarize(gguf.read_gguf(str(path)))

    assert summary["path"] == str(path)
    assert summary["size_bytes"] == path.stat().st_size
    assert summary["version"] == 3
    assert summary["architecture"] == "llama"
    assert summary["name"] == "Tiny Test Llama"
    assert summary["context_length"] == 2048
    assert summary["embedding_length"] == 64
    assert summary["block_count"] == 2
    assert summary["head_count"] == 4
    assert summary["head_count_kv"] == 2
    assert summary["file_type"] == 7
    assert summary["file_type_name"] == "MOSTLY_Q8_0"
    assert summary["quantization"] == "Q8_0"
    assert summary["tensor_types"] == {"Q8_0": 1, "F16": 1, "F32": 1}
    assert summary["tensor_count"] == 3
    assert summary["parameter_count"] == 64 * 1000 + 64 * 64 + 64
    assert summary["has_chat_template"] is True
    assert summary["chat_template_length"] == len(template)
    assert len(summary["metadata"]["tokenizer.chat_template"]) == 512
    assert summary["vocab_size"] == 1000
    assert summary["tokenizer_model"] == "llama"
    assert summary["metadata"]["tokenizer.ggml.tokens"] == 1000
    assert summary["metadata"]["llama.attention.layer_norm_rms_epsilon"] == 1e-05
    assert summary["metadata"]["llama.rope.freq_base"] == 10000.0
    assert summary["alignment"] == 32
    assert summary["tensor_data_offset"] == writer.data_offset
    assert summary["tensor_data_offset"] % 32 == 0
    assert summary["kv_count"] == len(writer.kvs)


def test_model_without_chat_template_or_file_type(tmp_path):
    writer = gw.GGUFWriter()
    writer.add("general.architecture", gw.STRING, "qwen2")
    writer.add("qwen2.context_length", gw.UINT32, 32768)
    writer.add("qwen2.vocab_size", gw.UINT32, 151936)
    writer.add_tensor("token_embd.weight", (256, 16), gw.GGML_Q4_K)
    writer.add_tensor("blk.0.ffn_down.weight", (256, 8), gw.GGML_Q8_0)
    writer.add_tensor("blk.0.attn_norm.weight", (256,), gw.GGML_F32)
    summary = gguf.summarize(parse(writer, tmp_path))
    assert summary["has_chat_template"] is False
    assert summary["chat_template_length"] == 0
    assert summary["file_type"] is None
    assert summary["file_type_name"] is None
    # most matrix weights are Q4_K
    assert summary["quantization"] == "Q4_K"
    assert summary["vocab_size"] == 151936
    assert summary["context_length"] == 32768
    assert summary["name"] is None
    assert summary["tokenizer_model"] is None


def test_per_layer_head_counts_report_the_largest(tmp_path):
    writer = gw.GGUFWriter()
    writer.add("general.architecture", gw.STRING, "openelm")
    writer.add_array("openelm.attention.head_count", gw.INT32, [12, 16, 20])
    writer.add_array("openelm.attention.head_count_kv", gw.INT32, [3, 4, 5])
    summary = gguf.summarize(parse(writer, tmp_path))
    assert summary["head_count"] == 20
    assert summary["head_count_kv"] == 5
    assert summary["parameter_count"] == 0


def test_big_tokenizer_is_skipped_not_listed(tmp_path):
    vocab = 150000
    writer = gw.llama_writer(vocab=vocab)
    summary = gguf.summarize(parse(writer, tmp_path))
    assert summary["vocab_size"] == vocab
    assert summary["metadata"]["tokenizer.ggml.tokens"] == vocab
    assert summary["arrays"]["tokenizer.ggml.scores"]["values"] is None


def test_custom_alignment(tmp_path):
    writer = gw.llama_writer()
    writer.alignment = 64
    writer.add("general.alignment", gw.UINT32, 64)
    parsed = parse(writer, tmp_path)
    assert parsed.alignment == 64
    assert parsed.data_offset == writer.data_offset
    assert parsed.data_offset % 64 == 0


def test_version_2_is_read(tmp_path):
    writer = gw.llama_writer()
    writer.version = 2
    assert parse(writer, tmp_path).version == 2


def test_tensor_data_is_not_read(tmp_path):
    """A 1 GiB (sparse) F32 tensor: only the header is read, so this is instant."""
    writer = gw.GGUFWriter()
    writer.add("general.architecture", gw.STRING, "llama")
    writer.add_tensor("big.weight", (16384, 16384), gw.GGML_F32)
    path = tmp_path / "big.gguf"
    header = writer.header()
    padded = -(-len(header) // 32) * 32
    with open(path, "wb") as handle:
        handle.write(header + b"\0" * (padded - len(header)))
        handle.truncate(padded + 16384 * 16384 * 4)
    summary = gguf.summarize(gguf.read_gguf(str(path)))
    assert summary["parameter_count"] == 16384 * 16384
    assert summary["size_bytes"] == padded + 16384 * 16384 * 4


# -- errors ------------------------------------------------------------------


def test_bad_magic_names_the_path(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(gguf.GGUFFormatError, match="is not a GGUF file") as exc:
        gguf.read_gguf(str(path))
    assert str(path) in str(exc.value)


def test_wrong_magic_from_writer(tmp_path):
    writer = gw.llama_writer()
    writer.magic = b"GGML"
    with pytest.raises(gguf.GGUFFormatError, match="magic is b'GGML'"):
        parse(writer, tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"")
    with pytest.raises(gguf.GGUFFormatError, match="empty"):
        gguf.read_gguf(str(path))


@pytest.mark.parametrize("version", [1, 4, 0])
def test_unsupported_versions(tmp_path, version):
    writer = gw.llama_writer()
    writer.version = version
    with pytest.raises(gguf.GGUFFormatError, match=f"GGUF version {version} is not supported"):
        parse(writer, tmp_path)


def test_unknown_value_type(tmp_path):
    writer = gw.GGUFWriter()
    writer.add("ok", gw.UINT8, 1)
    data = bytearray(writer.to_bytes())
    # patch the type of the only key/value (after magic, version, counts, key string)
    type_offset = 4 + 4 + 8 + 8 + 8 + len("ok")
    data[type_offset : type_offset + 4] = struct.pack("<I", 99)
    path = tmp_path / "odd.gguf"
    path.write_bytes(bytes(data))
    with pytest.raises(gguf.GGUFFormatError, match="unknown GGUF value type 99"):
        gguf.read_gguf(str(path))


def test_bad_alignment(tmp_path):
    writer = gw.llama_writer()
    writer.add("general.alignment", gw.UINT32, 48)
    with pytest.raises(gguf.GGUFFormatError, match="not a power of two"):
        parse(writer, tmp_path)


def truncation_points():
    writer = gw.llama_writer()
    data = writer.to_bytes()
    header_len = len(writer.header())
    return {
        "magic": 2,
        "version": 6,
        "counts": 20,
        "first-key": 30,
        "in-tokens": header_len // 2,
        "tensor-infos": header_len - 10,
        "tensor-data": len(data) - 1,
    }


@pytest.mark.parametrize(("where", "cut"), sorted(truncation_points().items()))
def test_truncated_file(tmp_path, where, cut):
    data = gw.llama_writer().to_bytes()
    path = tmp_path / f"cut-{where}.gguf"
    path.write_bytes(data[:cut])
    with pytest.raises(gguf.GGUFTruncatedError, match="truncated") as exc:
        gguf.read_gguf(str(path))
    assert str(path) in str(exc.value)


def test_absurd_counts_are_reported_as_truncated(tmp_path):
    path = tmp_path / "absurd.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 2**40, 2**40) + b"\0" * 64)
    with pytest.raises(gguf.GGUFTruncatedError, match="announces"):
        gguf.read_gguf(str(path))


def test_missing_file_raises_oserror(tmp_path):
    with pytest.raises(OSError):
        gguf.read_gguf(str(tmp_path / "nope.gguf"))


# -- tables ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_type", "name", "label"),
    [
        (0, "ALL_F32", "F32"),
        (1, "MOSTLY_F16", "F16"),
        (2, "MOSTLY_Q4_0", "Q4_0"),
        (3, "MOSTLY_Q4_1", "Q4_1"),
        (7, "MOSTLY_Q8_0", "Q8_0"),
        (8, "MOSTLY_Q5_0", "Q5_0"),
        (9, "MOSTLY_Q5_1", "Q5_1"),
        (10, "MOSTLY_Q2_K", "Q2_K"),
        (11, "MOSTLY_Q3_K_S", "Q3_K_S"),
        (12, "MOSTLY_Q3_K_M", "Q3_K_M"),
        (13, "MOSTLY_Q3_K_L", "Q3_K_L"),
        (14, "MOSTLY_Q4_K_S", "Q4_K_S"),
        (15, "MOSTLY_Q4_K_M", "Q4_K_M"),
        (16, "MOSTLY_Q5_K_S", "Q5_K_S"),
        (17, "MOSTLY_Q5_K_M", "Q5_K_M"),
        (18, "MOSTLY_Q6_K", "Q6_K"),
        (32, "MOSTLY_BF16", "BF16"),
        (4, None, None),  # removed from llama.cpp
        (1024, None, None),  # LLAMA_FTYPE_GUESSED never appears in a file
        (True, None, None),
        ("7", None, None),
    ],
)
def test_file_type_names(file_type, name, label):
    assert gguf.file_type_name(file_type) == name
    assert gguf.quantization_label(file_type) == label


@pytest.mark.skipif(not LLAMA_H.is_file(), reason="set LLAMA_H to llama.cpp's include/llama.h")
def test_file_types_match_llama_h():
    text = LLAMA_H.read_text()
    found = {int(v): n for n, v in re.findall(r"^\s*LLAMA_FTYPE_(\w+)\s*=\s*(\d+),", text, re.MULTILINE)}
    found.pop(1024, None)  # GUESSED
    assert found == gguf.LLAMA_FTYPES


# -- the tables against gguf-py's constants (the reference implementation) ------
# Those of the vendored llama.cpp tree: the PyPI gguf 0.19.0 is older than that tree (no Q1_0/Q2_0,
# and a stale Q8_1 block size of 40 bytes where ggml-common.h asserts 36).
needs_tree = pytest.mark.skipif(
    not gw.FROM_LLAMA_CPP_TREE, reason=f"the llama.cpp tree's gguf-py ({gw.VENDORED_GGUF_PY}) is not there"
)


def test_value_types_match_gguf_py():
    assert {int(t): t.name.lower() for t in gw.VT} == gguf.VALUE_TYPE_NAMES


@needs_tree
def test_ggml_types_match_gguf_py():
    """Every ggml type gguf-py knows, with its name, block size and bytes per block (GGML_QUANT_SIZES)."""
    reference = {int(t): (t.name, *gw.gguf_py.GGML_QUANT_SIZES[t]) for t in gw.QT if t in gw.gguf_py.GGML_QUANT_SIZES}
    assert gguf.GGML_TYPES == reference


@needs_tree
def test_file_types_match_gguf_py():
    reference = {int(t): t.name for t in gw.gguf_py.LlamaFileType if t.name != "GUESSED"}
    assert gguf.LLAMA_FTYPES == reference


def test_ggml_type_names():
    assert gguf.ggml_type_name(0) == "F32"
    assert gguf.ggml_type_name(8) == "Q8_0"
    assert gguf.ggml_type_name(30) == "BF16"
    assert gguf.ggml_type_name(777) == "TYPE_777"


def test_unknown_tensor_type_is_counted_not_fatal(tmp_path):
    writer = gw.GGUFWriter()
    writer.add_tensor("w", (32, 2), gw.GGML_F32)
    data = bytearray(writer.to_bytes())
    # the tensor type is the uint32 right before the final uint64 offset of the only tensor info
    info_end = len(writer.header())
    data[info_end - 12 : info_end - 8] = struct.pack("<I", 250)
    path = tmp_path / "future.gguf"
    path.write_bytes(bytes(data))
    summary = gguf.summarize(gguf.read_gguf(str(path)))
    assert summary["tensor_types"] == {"TYPE_250": 1}
    assert summary["parameter_count"] == 64


# -- cross-check with the reference implementation (gguf-py), when installed --


def test_cross_check_with_gguf_py(tmp_path):
    gguf_py = pytest.importorskip("gguf")
    np = pytest.importorskip("numpy")

    # 1. their writer, our reader
    path = tmp_path / "ref.gguf"
    writer = gguf_py.GGUFWriter(str(path), "llama")
    writer.add_name("Reference")
    writer.add_context_length(2048)
    writer.add_embedding_length(64)
    writer.add_block_count(2)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_file_type(gguf_py.LlamaFileType.MOSTLY_Q8_0)
    writer.add_tokenizer_model("llama")
    writer.add_token_list([f"<t{i}>" for i in range(300)])
    writer.add_chat_template("{{ messages }}")
    writer.add_array("test.small", [1, 2, 3])
    writer.add_float64("test.f64", 2.5)
    writer.add_bool("test.flag", True)
    writer.add_tensor("token_embd.weight", np.zeros((300, 64), dtype=np.float16))
    writer.add_tensor("output_norm.weight", np.zeros((64,), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    summary = gguf.summarize(gguf.read_gguf(str(path)))
    assert summary["architecture"] == "llama"
    assert summary["name"] == "Reference"
    assert summary["context_length"] == 2048
    assert summary["head_count_kv"] == 2
    assert summary["quantization"] == "Q8_0"
    assert summary["vocab_size"] == 300
    assert summary["has_chat_template"] is True
    assert summary["metadata"]["test.f64"] == 2.5
    assert summary["metadata"]["test.flag"] is True
    assert summary["arrays"]["test.small"]["values"] == [1, 2, 3]
    assert summary["tensor_types"] == {"F16": 1, "F32": 1}
    assert summary["parameter_count"] == 300 * 64 + 64

    # 2. our writer, their reader
    ours = gw.llama_writer().write(tmp_path / "ours.gguf")
    reference = gguf_py.GGUFReader(str(ours))
    parsed = gguf.read_gguf(str(ours))
    assert parsed.data_offset == reference.data_offset
    assert [t.name for t in parsed.tensors] == [t.name for t in reference.tensors]
    assert [t.n_elements for t in parsed.tensors] == [int(t.n_elements) for t in reference.tensors]
    assert [t.type_name for t in parsed.tensors] == [t.tensor_type.name for t in reference.tensors]
    assert [t.n_bytes for t in parsed.tensors] == [int(t.n_bytes) for t in reference.tensors]
    for key, field in reference.fields.items():
        if key.startswith("GGUF."):
            continue
        value = parsed.kvs[key]
        if isinstance(value, gguf.GGUFArray):
            assert value.length == len(field.data)
        elif isinstance(value, float):
            assert value == pytest.approx(float(field.contents()), rel=1e-6)
        else:
            assert value == field.contents()
