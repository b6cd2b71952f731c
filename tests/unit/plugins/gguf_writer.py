"""GGUF fixtures for the tests, written by llama.cpp's own gguf-py.

`GGUFWriter` here only collects what a test wants (key/values with explicit GGUF value types,
tensor infos with explicit ggml types, byte order, alignment) and hands it to `gguf.GGUFWriter`,
which writes the file; the reader under test (plugins/module_utils/gguf.py) never writes its own
fixtures. What gguf-py will not write on purpose (another magic or version, for the refusals) is
patched into its output afterwards.
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

# The gguf-py of the llama.cpp tree the test fixtures vendor (tests/fixtures/llama_src.py) is the
# reference for the type tables; without that tree, the pinned `gguf` package writes the fixtures.
_CACHE = Path(os.environ.get("SLM_TEST_CACHE", "/var/cache/slm-edge-test"))
VENDORED_GGUF_PY = _CACHE / "fixtures" / "llama.cpp-0c1e57098" / "gguf-py"
if (VENDORED_GGUF_PY / "gguf" / "__init__.py").is_file() and str(VENDORED_GGUF_PY) not in sys.path:
    sys.path.insert(0, str(VENDORED_GGUF_PY))

import gguf as gguf_py

FROM_LLAMA_CPP_TREE = Path(gguf_py.__file__).resolve().is_relative_to(VENDORED_GGUF_PY.resolve())

VT = gguf_py.GGUFValueType
UINT8, INT8, UINT16, INT16, UINT32, INT32 = VT.UINT8, VT.INT8, VT.UINT16, VT.INT16, VT.UINT32, VT.INT32
FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = (
    VT.FLOAT32,
    VT.BOOL,
    VT.STRING,
    VT.ARRAY,
    VT.UINT64,
    VT.INT64,
    VT.FLOAT64,
)

QT = gguf_py.GGMLQuantizationType
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0, GGML_Q4_K, GGML_BF16 = QT.F32, QT.F16, QT.Q4_0, QT.Q8_0, QT.Q4_K, QT.BF16


class GGUFWriter:
    def __init__(self, version=3, endian="<", alignment=32, magic=b"GGUF"):
        self.version = version
        self.endian = endian
        self.alignment = alignment
        self.magic = magic
        self.kvs = []  # (key, type, value)
        self.tensors = []  # (name, dims with ne0 first, ggml type)

    # -- building ----------------------------------------------------------
    def add(self, key, value_type, value):
        self.kvs.append((key, value_type, value))
        return self

    def add_array(self, key, element_type, values):
        return self.add(key, ARRAY, (element_type, list(values)))

    def add_tensor(self, name, dims, ggml_type):
        self.tensors.append((name, tuple(dims), ggml_type))
        return self

    @staticmethod
    def tensor_nbytes(dims, ggml_type):
        count = 1
        for dim in dims:
            count *= dim
        block, size = gguf_py.GGML_QUANT_SIZES[QT(ggml_type)]
        return count // block * size

    # -- writing through gguf-py -------------------------------------------
    @classmethod
    def _byte_shape(cls, dims, qtype):
        """numpy shape of the raw bytes: outer dimensions first, the row (ne0) in bytes last."""
        return (*reversed(dims[1:]), cls.tensor_nbytes(dims[:1], qtype))

    def _writer(self, path):
        endianess = gguf_py.GGUFEndian.BIG if self.endian == ">" else gguf_py.GGUFEndian.LITTLE
        kvs = dict((key, (value_type, value)) for key, value_type, value in self.kvs)
        arch = kvs.get("general.architecture", (STRING, ""))[1]
        writer = gguf_py.GGUFWriter(str(path), arch, endianess=endianess)
        if "general.architecture" not in kvs:
            writer.kv_data[0].pop("general.architecture", None)  # gguf-py always adds one
        writer.data_alignment = self.alignment
        for key, value_type, value in self.kvs:
            if key == "general.architecture":
                continue
            if VT(value_type) == ARRAY:
                element_type, values = value
                if VT(element_type) == ARRAY:  # arrays of arrays: gguf-py types the inner ones
                    writer.add_key_value(key, [inner for _type, inner in values], ARRAY, sub_type=ARRAY)
                else:
                    writer.add_key_value(key, values, ARRAY, sub_type=VT(element_type))
            else:
                writer.add_key_value(key, value, VT(value_type))
        return writer

    def _patch(self, data):
        data = bytearray(data)
        data[0:4] = self.magic
        data[4:8] = struct.pack(self.endian + "I", self.version)
        return bytes(data)

    def header(self):
        """The bytes up to the end of the tensor infos (no padding, no tensor data)."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "header.gguf"
            writer = self._writer(path)
            for name, dims, ggml_type in self.tensors:
                qtype = QT(ggml_type)
                writer.add_tensor_info(
                    name, self._byte_shape(dims, qtype), np.uint8, self.tensor_nbytes(dims, qtype), qtype
                )
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            writer.close()
            return self._patch(path.read_bytes())

    def to_bytes(self):
        """The whole file, tensor data (zeros) included, as gguf-py writes it."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.gguf"
            writer = self._writer(path)
            for name, dims, ggml_type in self.tensors:
                qtype = QT(ggml_type)
                writer.add_tensor(name, np.zeros(self._byte_shape(dims, qtype), dtype=np.uint8), raw_dtype=qtype)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
            writer.close()
            data = path.read_bytes()
        header = len(self.header())
        self.data_offset = -(-header // self.alignment) * self.alignment if self.tensors else header
        return self._patch(data)

    def write(self, path):
        path = Path(path)
        path.write_bytes(self.to_bytes())
        return path


def llama_writer(
    context_length=2048, file_type=7, vocab=1000, chat_template="{% for m in messages %}{{ m }}{% endfor %}"
):
    """A llama-shaped model with a tokenizer, a chat template and three tensors (F32, F16, Q8_0)."""
    writer = GGUFWriter()
    writer.add("general.architecture", STRING, "llama")
    writer.add("general.name", STRING, "Tiny Test Llama")
    writer.add("general.file_type", UINT32, file_type)
    writer.add("general.quantization_version", UINT32, 2)
    writer.add("llama.context_length", UINT32, context_length)
    writer.add("llama.embedding_length", UINT32, 64)
    writer.add("llama.block_count", UINT32, 2)
    writer.add("llama.feed_forward_length", UINT32, 256)
    writer.add("llama.attention.head_count", UINT32, 4)
    writer.add("llama.attention.head_count_kv", UINT32, 2)
    writer.add("llama.attention.layer_norm_rms_epsilon", FLOAT32, 1e-5)
    writer.add("llama.rope.freq_base", FLOAT32, 10000.0)
    writer.add("tokenizer.ggml.model", STRING, "llama")
    writer.add_array("tokenizer.ggml.tokens", STRING, [f"<tok{i}>" for i in range(vocab)])
    writer.add_array("tokenizer.ggml.scores", FLOAT32, [float(-i) for i in range(vocab)])
    writer.add_array("tokenizer.ggml.token_type", INT32, [1] * vocab)
    writer.add("tokenizer.ggml.bos_token_id", UINT32, 1)
    writer.add("tokenizer.ggml.eos_token_id", UINT32, 2)
    if chat_template is not None:
        writer.add("tokenizer.chat_template", STRING, chat_template)
    writer.add_tensor("token_embd.weight", (64, vocab), GGML_Q8_0)
    writer.add_tensor("blk.0.attn_q.weight", (64, 64), GGML_F16)
    writer.add_tensor("output_norm.weight", (64,), GGML_F32)
    return writer
