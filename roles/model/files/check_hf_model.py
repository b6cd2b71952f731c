"""Check a Hugging Face model directory before conversion (stdlib only).

Usage: check_hf_model.py MODEL_DIR LLAMA_CPP_SOURCE_DIR
Prints one JSON object; exits 1 with a clear "error" when the model cannot be
converted: no config.json, an architecture the converter does not know,
missing tokenizer files, or a truncated / corrupted safetensors file.
"""

import json
import re
import struct
import sys
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json")


def supported_architectures(src: Path) -> set:
    found = set()
    files = [src / "convert_hf_to_gguf.py", *sorted((src / "conversion").glob("*.py"))]
    pattern = re.compile(r"register\(([^)]*)\)")
    for path in files:
        if path.is_file():
            for args in pattern.findall(path.read_text(errors="replace")):
                found.update(re.findall(r"\"([A-Za-z0-9_]+)\"", args))
    return found


def check_safetensors(path: Path) -> str:
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return f"{path.name}: truncated (only {size} bytes)"
        (n,) = struct.unpack("<Q", head)
        if n <= 0 or n > 100 * 1024 * 1024 or 8 + n > size:
            return f"{path.name}: corrupted header (declared header length {n}, file size {size})"
        try:
            header = json.loads(fh.read(n))
        except ValueError as exc:
            return f"{path.name}: corrupted header ({exc})"
    end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end != size:
        return f"{path.name}: tensor data is {size - 8 - n} bytes, header says {end}: truncated or corrupted"
    return ""


def main() -> int:
    model, src = Path(sys.argv[1]), Path(sys.argv[2])
    result = {"model_dir": str(model), "error": ""}
    config_path = model / "config.json"
    if not config_path.is_file():
        result["error"] = f"{model} has no config.json: not a Hugging Face model directory"
    else:
        config = json.loads(config_path.read_text())
        archs = config.get("architectures") or []
        result["architectures"] = archs
        result["context_length"] = config.get("max_position_embeddings")
        known = supported_architectures(src)
        if not archs or (known and archs[0] not in known):
            result["error"] = (
                f"architecture {archs[:1]} is not supported by this llama.cpp's convert_hf_to_gguf.py "
                f"({len(known)} known): upgrade llama_cpp_version or provide a ready GGUF"
            )
        elif not any((model / f).is_file() for f in TOKENIZER_FILES):
            result["error"] = f"{model} has no tokenizer ({' or '.join(TOKENIZER_FILES)}): copy the tokenizer files too"
        else:
            weights = sorted(model.glob("*.safetensors"))
            result["weights"] = [w.name for w in weights]
            if not weights and not list(model.glob("*.bin")):
                result["error"] = f"{model} has no weights (*.safetensors or *.bin)"
            for w in weights:
                problem = check_safetensors(w)
                if problem:
                    result["error"] = "corrupted weights: " + problem
                    break
    print(json.dumps(result))
    return 1 if result["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
