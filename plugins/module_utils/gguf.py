# -*- coding: utf-8 -*-
# Copyright (c) slm.edge contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""Read the header of a GGUF file (metadata and tensor infos, never tensor data).

The format is described in ggml's docs/gguf.md: magic ``GGUF``, version
(2 or 3; version 1 used 32 bit counts and is not supported), tensor count and
key/value count as uint64, the key/value pairs, the tensor infos (name, number
of dimensions, dimensions, ggml type, offset) and, aligned to
``general.alignment`` (default 32), the tensor data.  Files written for a big
endian host are detected by their version number and read as such.

Standard library only, Python 3.8+: this code runs on the managed host.
"""

from __future__ import annotations

import os
import struct

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
# Arrays longer than this are skipped over (only their length is kept), so a
# 150k entry tokenizer.ggml.tokens never becomes a Python list.
ARRAY_VALUES_LIMIT = 64
# Strings in the summary's metadata are cut to this many characters.
STRING_LIMIT = 512
# ggml supports 4 dimensions (GGML_MAX_DIMS); allow some room, reject garbage.
MAX_DIMS = 8
MAX_NESTING = 8
_READ_BUFFER = 1 << 20

# gguf_type from ggml's gguf.h / GGUFValueType in gguf-py.
VALUE_UINT8 = 0
VALUE_INT8 = 1
VALUE_UINT16 = 2
VALUE_INT16 = 3
VALUE_UINT32 = 4
VALUE_INT32 = 5
VALUE_FLOAT32 = 6
VALUE_BOOL = 7
VALUE_STRING = 8
VALUE_ARRAY = 9
VALUE_UINT64 = 10
VALUE_INT64 = 11
VALUE_FLOAT64 = 12

VALUE_TYPE_NAMES = {
    VALUE_UINT8: "uint8",
    VALUE_INT8: "int8",
    VALUE_UINT16: "uint16",
    VALUE_INT16: "int16",
    VALUE_UINT32: "uint32",
    VALUE_INT32: "int32",
    VALUE_FLOAT32: "float32",
    VALUE_BOOL: "bool",
    VALUE_STRING: "string",
    VALUE_ARRAY: "array",
    VALUE_UINT64: "uint64",
    VALUE_INT64: "int64",
    VALUE_FLOAT64: "float64",
}

_SCALAR_FORMATS = {
    VALUE_UINT8: "B",
    VALUE_INT8: "b",
    VALUE_UINT16: "H",
    VALUE_INT16: "h",
    VALUE_UINT32: "I",
    VALUE_INT32: "i",
    VALUE_FLOAT32: "f",
    VALUE_BOOL: "?",
    VALUE_UINT64: "Q",
    VALUE_INT64: "q",
    VALUE_FLOAT64: "d",
}
_SCALAR_SIZES = dict((t, struct.calcsize("<" + f)) for t, f in _SCALAR_FORMATS.items())

# ggml_type (ggml.h, GGMLQuantizationType in gguf-py): name, block size in
# elements, bytes per block (GGML_QUANT_SIZES).
_QK_K = 256
GGML_TYPES = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 2 + 16),
    3: ("Q4_1", 32, 2 + 2 + 16),
    6: ("Q5_0", 32, 2 + 4 + 16),
    7: ("Q5_1", 32, 2 + 2 + 4 + 16),
    8: ("Q8_0", 32, 2 + 32),
    9: ("Q8_1", 32, 2 + 2 + 32),
    10: ("Q2_K", _QK_K, 2 + 2 + _QK_K // 16 + _QK_K // 4),
    11: ("Q3_K", _QK_K, 2 + _QK_K // 4 + _QK_K // 8 + 12),
    12: ("Q4_K", _QK_K, 2 + 2 + _QK_K // 2 + 12),
    13: ("Q5_K", _QK_K, 2 + 2 + _QK_K // 2 + _QK_K // 8 + 12),
    14: ("Q6_K", _QK_K, 2 + _QK_K // 2 + _QK_K // 4 + _QK_K // 16),
    15: ("Q8_K", _QK_K, 4 + _QK_K + _QK_K // 8),
    16: ("IQ2_XXS", _QK_K, 2 + _QK_K // 4),
    17: ("IQ2_XS", _QK_K, 2 + _QK_K // 4 + _QK_K // 32),
    18: ("IQ3_XXS", _QK_K, 2 + _QK_K // 4 + _QK_K // 8),
    19: ("IQ1_S", _QK_K, 2 + _QK_K // 8 + _QK_K // 16),
    20: ("IQ4_NL", 32, 2 + 16),
    21: ("IQ3_S", _QK_K, 2 + _QK_K // 4 + _QK_K // 8 + _QK_K // 32 + 4),
    22: ("IQ2_S", _QK_K, 2 + _QK_K // 4 + _QK_K // 16),
    23: ("IQ4_XS", _QK_K, 2 + 2 + _QK_K // 2 + _QK_K // 64),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", _QK_K, _QK_K // 8 + _QK_K // 16 + _QK_K // 32),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", _QK_K, 2 + 4 * 13),
    35: ("TQ2_0", _QK_K, 2 + 64),
    39: ("MXFP4", 32, 1 + 16),
    40: ("NVFP4", 64, 4 + 32),
    41: ("Q1_0", 128, 2 + 16),
    42: ("Q2_0", 64, 2 + 16),
}

# enum llama_ftype from llama.cpp's include/llama.h (LLAMA_FTYPE_ prefix left
# out); general.file_type holds one of these.
LLAMA_FTYPES = {
    0: "ALL_F32",
    1: "MOSTLY_F16",
    2: "MOSTLY_Q4_0",
    3: "MOSTLY_Q4_1",
    7: "MOSTLY_Q8_0",
    8: "MOSTLY_Q5_0",
    9: "MOSTLY_Q5_1",
    10: "MOSTLY_Q2_K",
    11: "MOSTLY_Q3_K_S",
    12: "MOSTLY_Q3_K_M",
    13: "MOSTLY_Q3_K_L",
    14: "MOSTLY_Q4_K_S",
    15: "MOSTLY_Q4_K_M",
    16: "MOSTLY_Q5_K_S",
    17: "MOSTLY_Q5_K_M",
    18: "MOSTLY_Q6_K",
    19: "MOSTLY_IQ2_XXS",
    20: "MOSTLY_IQ2_XS",
    21: "MOSTLY_Q2_K_S",
    22: "MOSTLY_IQ3_XS",
    23: "MOSTLY_IQ3_XXS",
    24: "MOSTLY_IQ1_S",
    25: "MOSTLY_IQ4_NL",
    26: "MOSTLY_IQ3_S",
    27: "MOSTLY_IQ3_M",
    28: "MOSTLY_IQ2_S",
    29: "MOSTLY_IQ2_M",
    30: "MOSTLY_IQ4_XS",
    31: "MOSTLY_IQ1_M",
    32: "MOSTLY_BF16",
    36: "MOSTLY_TQ1_0",
    37: "MOSTLY_TQ2_0",
    38: "MOSTLY_MXFP4_MOE",
    39: "MOSTLY_NVFP4",
    40: "MOSTLY_Q1_0",
    41: "MOSTLY_Q2_0",
}


class GGUFError(Exception):
    """Base class of the errors raised while reading a GGUF file."""


class GGUFFormatError(GGUFError):
    """Not a GGUF file, or a GGUF file this reader cannot handle."""


class GGUFTruncatedError(GGUFError):
    """The file ends before the header or the tensor data it announces."""


class GGUFArray:
    """An array value: element type name, length and, for short arrays, the values."""

    __slots__ = ("element_type", "length", "values")

    def __init__(self, element_type, length, values=None):
        self.element_type = element_type
        self.length = length
        self.values = values

    def __len__(self):
        return self.length

    def __repr__(self):
        return "GGUFArray(%r, %d, %r)" % (self.element_type, self.length, self.values)


class GGUFTensorInfo:
    """One tensor info entry; the data itself is never read."""

    __slots__ = ("dims", "ggml_type", "name", "offset")

    def __init__(self, name, dims, ggml_type, offset):
        self.name = name
        self.dims = dims
        self.ggml_type = ggml_type
        self.offset = offset

    @property
    def n_elements(self):
        count = 1
        for dim in self.dims:
            count *= dim
        return count

    @property
    def type_name(self):
        return ggml_type_name(self.ggml_type)

    @property
    def n_bytes(self):
        """Size of the tensor data, ``None`` for a ggml type this reader does not know."""
        known = GGML_TYPES.get(self.ggml_type)
        if known is None:
            return None
        _name, block_size, type_size = known
        return self.n_elements * type_size // block_size


class GGUFFile:
    """The parsed header of a GGUF file."""

    def __init__(self, path, size):
        self.path = path
        self.size = size
        self.version = None
        self.byte_order = "little"
        self.tensor_count = 0
        self.kv_count = 0
        self.kvs = {}
        self.value_types = {}
        self.tensors = []
        self.alignment = DEFAULT_ALIGNMENT
        self.data_offset = None
        self.data_end = None


def ggml_type_name(ggml_type):
    known = GGML_TYPES.get(ggml_type)
    return known[0] if known else "TYPE_%d" % ggml_type


def file_type_name(file_type):
    """``15`` -> ``"MOSTLY_Q4_K_M"``; ``None`` when unknown."""
    if isinstance(file_type, bool) or not isinstance(file_type, int):
        return None
    return LLAMA_FTYPES.get(file_type)


def quantization_label(file_type):
    """Short label of a llama file type: ``0`` -> ``"F32"``, ``15`` -> ``"Q4_K_M"``."""
    name = file_type_name(file_type)
    if name is None:
        return None
    for prefix in ("MOSTLY_", "ALL_"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


class _Reader:
    """Sequential reader that knows the file size, so a short file is reported as truncated."""

    def __init__(self, handle, path, size):
        self._handle = handle
        self.path = path
        self.size = size
        self.pos = 0
        self.endian = "<"

    def truncated(self, what):
        return GGUFTruncatedError(
            "%s is truncated: file ends at byte %d while reading %s (at byte %d)"
            % (self.path, self.size, what, self.pos)
        )

    def read(self, count, what):
        if count > self.size - self.pos:
            raise self.truncated(what)
        data = self._handle.read(count)
        if len(data) != count:
            raise self.truncated(what)
        self.pos += count
        return data

    def skip(self, count, what):
        if count > self.size - self.pos:
            raise self.truncated(what)
        self._handle.seek(count, os.SEEK_CUR)
        self.pos += count

    def unpack(self, fmt, size, what):
        return struct.unpack(self.endian + fmt, self.read(size, what))[0]

    def u32(self, what):
        return self.unpack("I", 4, what)

    def u64(self, what):
        return self.unpack("Q", 8, what)

    def string(self, what):
        length = self.u64(what + " length")
        return self.read(length, what).decode("utf-8", "replace")

    def skip_string(self, what):
        self.skip(self.u64(what + " length"), what)


def _scalar(reader, value_type, what):
    value = reader.unpack(_SCALAR_FORMATS[value_type], _SCALAR_SIZES[value_type], what)
    if value_type == VALUE_FLOAT32:
        # float32 -> shortest decimal that round trips in float32 (1e-05, not 9.99999974738e-06)
        value = float("%.7g" % value)
    return value


def _check_type(reader, value_type, what):
    if value_type not in VALUE_TYPE_NAMES:
        raise GGUFFormatError(
            "%s: unknown GGUF value type %d for %s (at byte %d)" % (reader.path, value_type, what, reader.pos)
        )


def _skip_array(reader, element_type, length, what, depth):
    if element_type in _SCALAR_SIZES:
        reader.skip(length * _SCALAR_SIZES[element_type], what)
    elif element_type == VALUE_STRING:
        for _index in range(length):
            reader.skip_string(what)
    else:  # nested arrays
        if depth >= MAX_NESTING:
            raise GGUFFormatError("%s: arrays nested deeper than %d in %s" % (reader.path, MAX_NESTING, what))
        for _index in range(length):
            inner_type = reader.u32(what + " element type")
            _check_type(reader, inner_type, what)
            _skip_array(reader, inner_type, reader.u64(what + " length"), what, depth + 1)


def _read_value(reader, value_type, what, depth=0):
    _check_type(reader, value_type, what)
    if value_type == VALUE_STRING:
        return reader.string(what)
    if value_type != VALUE_ARRAY:
        return _scalar(reader, value_type, what)
    if depth >= MAX_NESTING:
        raise GGUFFormatError("%s: arrays nested deeper than %d in %s" % (reader.path, MAX_NESTING, what))
    element_type = reader.u32(what + " element type")
    _check_type(reader, element_type, what)
    length = reader.u64(what + " length")
    if length > ARRAY_VALUES_LIMIT:
        _skip_array(reader, element_type, length, what, depth + 1)
        return GGUFArray(VALUE_TYPE_NAMES[element_type], length)
    values = [_read_value(reader, element_type, what, depth + 1) for _index in range(length)]
    return GGUFArray(VALUE_TYPE_NAMES[element_type], length, values)


def read_gguf(path):
    """Parse the header of the GGUF file at ``path`` and return a GGUFFile.

    Raises GGUFFormatError (bad magic, unsupported version, corrupt header),
    GGUFTruncatedError (the file is shorter than its header or tensor data
    says) and OSError (missing, unreadable).
    """
    size = os.stat(path).st_size
    result = GGUFFile(path, size)
    with open(path, "rb", buffering=_READ_BUFFER) as handle:
        reader = _Reader(handle, path, size)
        magic = handle.read(4)
        if magic != GGUF_MAGIC:
            if not magic:
                raise GGUFFormatError("%s is not a GGUF file: the file is empty" % path)
            if len(magic) < 4 and GGUF_MAGIC.startswith(magic):
                raise GGUFTruncatedError("%s is truncated: only %d bytes" % (path, len(magic)))
            raise GGUFFormatError("%s is not a GGUF file: magic is %r, expected %r" % (path, magic, GGUF_MAGIC))
        reader.pos = 4

        version = reader.u32("version")
        if version & 0xFFFF == 0 and version:
            # Written for a big endian host (gguf-py's convert --bigendian).
            reader.endian = ">"
            result.byte_order = "big"
            version = struct.unpack(">I", struct.pack("<I", version))[0]
        if version not in SUPPORTED_VERSIONS:
            raise GGUFFormatError(
                "%s: GGUF version %d is not supported (supported: %s)"
                % (path, version, ", ".join(str(v) for v in SUPPORTED_VERSIONS))
            )
        result.version = version

        result.tensor_count = tensor_count = reader.u64("tensor count")
        result.kv_count = kv_count = reader.u64("key/value count")
        # Smallest possible key/value: 8 (key length) + 4 (type) + 1 (uint8).
        # Smallest tensor info: 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset).
        if kv_count * 13 + tensor_count * 24 > size - reader.pos:
            raise GGUFTruncatedError(
                "%s is truncated or corrupt: the header announces %d key/value pairs and %d tensors, "
                "more than the %d bytes left can hold" % (path, kv_count, tensor_count, size - reader.pos)
            )

        for index in range(kv_count):
            key = reader.string("key of key/value pair %d" % index)
            value_type = reader.u32("type of %s" % key)
            result.kvs[key] = _read_value(reader, value_type, key)
            result.value_types[key] = VALUE_TYPE_NAMES[value_type]

        for index in range(tensor_count):
            name = reader.string("name of tensor %d" % index)
            n_dims = reader.u32("dimensions of tensor %s" % name)
            if n_dims > MAX_DIMS:
                raise GGUFFormatError("%s: tensor %s has %d dimensions (corrupt header?)" % (path, name, n_dims))
            dims = tuple(reader.u64("shape of tensor %s" % name) for _dim in range(n_dims))
            ggml_type = reader.u32("type of tensor %s" % name)
            offset = reader.u64("offset of tensor %s" % name)
            result.tensors.append(GGUFTensorInfo(name, dims, ggml_type, offset))

    alignment = result.kvs.get("general.alignment", DEFAULT_ALIGNMENT)
    if isinstance(alignment, bool) or not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise GGUFFormatError("%s: general.alignment %r is not a power of two" % (path, alignment))
    result.alignment = alignment
    result.data_offset = -(-reader.pos // alignment) * alignment

    data_end = result.data_offset
    for tensor in result.tensors:
        n_bytes = tensor.n_bytes
        if n_bytes is not None:
            data_end = max(data_end, result.data_offset + tensor.offset + n_bytes)
    result.data_end = data_end
    if result.tensors and data_end > size:
        raise GGUFTruncatedError(
            "%s is truncated: the tensor data ends at byte %d but the file has %d bytes" % (path, data_end, size)
        )
    return result


def _short(value, limit):
    if isinstance(value, str) and len(value) > limit:
        return value[:limit]
    return value


def _largest(value):
    """A per-layer array (some architectures store head counts per layer) -> its largest value."""
    if isinstance(value, GGUFArray):
        numbers = [v for v in value.values or [] if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return max(numbers) if numbers else None
    if isinstance(value, bool):
        return None
    return value


def _guess_quantization(tensors):
    """The ggml type holding most weights of the matrices (tensors with 2+ dimensions)."""
    weights = {}
    for tensor in tensors:
        if len(tensor.dims) >= 2:
            weights[tensor.type_name] = weights.get(tensor.type_name, 0) + tensor.n_elements
    if not weights:
        return None
    return sorted(weights.items(), key=lambda item: (-item[1], item[0]))[0][0]


def summarize(gguf, string_limit=STRING_LIMIT):
    """The dictionary the gguf_info module returns for a parsed GGUFFile."""
    kvs = gguf.kvs
    architecture = kvs.get("general.architecture")
    arch = architecture if isinstance(architecture, str) else None

    def arch_value(suffix):
        if arch is None:
            return None
        return kvs.get("%s.%s" % (arch, suffix))

    file_type = kvs.get("general.file_type")
    if isinstance(file_type, bool) or not isinstance(file_type, int):
        file_type = None
    quantization = quantization_label(file_type) or _guess_quantization(gguf.tensors)

    tensor_types = {}
    parameter_count = 0
    for tensor in gguf.tensors:
        tensor_types[tensor.type_name] = tensor_types.get(tensor.type_name, 0) + 1
        parameter_count += tensor.n_elements

    chat_template = kvs.get("tokenizer.chat_template")
    has_chat_template = isinstance(chat_template, str) and bool(chat_template)

    vocab_size = _largest(arch_value("vocab_size"))
    tokens = kvs.get("tokenizer.ggml.tokens")
    if vocab_size is None and isinstance(tokens, GGUFArray):
        vocab_size = tokens.length

    tokenizer_model = kvs.get("tokenizer.ggml.model")

    metadata = {}
    arrays = {}
    for key, value in kvs.items():
        if isinstance(value, GGUFArray):
            metadata[key] = value.length
            values = None
            if value.values is not None:
                values = [len(v) if isinstance(v, GGUFArray) else _short(v, string_limit) for v in value.values]
            arrays[key] = {"element_type": value.element_type, "length": value.length, "values": values}
        else:
            metadata[key] = _short(value, string_limit)

    name = kvs.get("general.name")
    return {
        "path": gguf.path,
        "size_bytes": gguf.size,
        "version": gguf.version,
        "byte_order": gguf.byte_order,
        "architecture": arch,
        "name": name if isinstance(name, str) else None,
        "parameter_count": parameter_count,
        "tensor_count": gguf.tensor_count,
        "kv_count": gguf.kv_count,
        "alignment": gguf.alignment,
        "tensor_data_offset": gguf.data_offset,
        "context_length": _largest(arch_value("context_length")),
        "embedding_length": _largest(arch_value("embedding_length")),
        "block_count": _largest(arch_value("block_count")),
        "head_count": _largest(arch_value("attention.head_count")),
        "head_count_kv": _largest(arch_value("attention.head_count_kv")),
        "key_length": _largest(arch_value("attention.key_length")),
        "value_length": _largest(arch_value("attention.value_length")),
        "file_type": file_type,
        "file_type_name": file_type_name(file_type),
        "quantization": quantization,
        "tensor_types": tensor_types,
        "has_chat_template": has_chat_template,
        "chat_template_length": len(chat_template) if has_chat_template else 0,
        "vocab_size": vocab_size,
        "tokenizer_model": tokenizer_model if isinstance(tokenizer_model, str) else None,
        "metadata": metadata,
        "arrays": arrays,
    }
