"""A random-weight Llama with SmolLM2-1.7B-Instruct's shape, for GPU throughput figures.

Real weights cannot be fetched on the GPU host; decode speed depends on the shape and
the bytes moved, not on the values, so random weights give real serving numbers (the
text is noise). The tokenizer is the tests' own (tests/fixtures/tiny_model.py, trained
here when no TOKENIZER_DIR is given), padded to the vocabulary by the converter, with
the pieces that print nothing hidden from greedy decoding (below).

  python3 make_model.py OUT_DIR [TOKENIZER_DIR] [--shape smollm2|smollm2-135m|smollm2-mini]

``smollm2-135m`` is SmolLM2-135M's shape (30 layers of width 576, grouped-query attention,
134.5M parameters), the size a CPU host serves. ``smollm2-mini`` keeps the vocabulary, the
tokenizer fix and the layer layout but has 4 layers of width 256 (16.8M parameters): the same
path in seconds.
Prints the parameter count.
"""

import argparse
import shutil
import sys
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import tiny_model  # the tests' tokenizer

SHAPES = {
    "smollm2": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 24, "num_attention_heads": 32},
    "smollm2-mini": {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4, "num_attention_heads": 4},
    # SmolLM2-135M's shape (9 query heads sharing 3 KV heads): a real small model a CPU serves.
    "smollm2-135m": {
        "hidden_size": 576,
        "intermediate_size": 1536,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
    },
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("tokenizer", type=Path, nargs="?", help="a folder with tokenizer.model (default: train one)")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="smollm2")
    args = parser.parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.tokenizer:
        for name in ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"):
            shutil.copy(args.tokenizer / name, out / name)
    else:
        tiny_model.train_tokenizer(out)
        tiny_model.write_tokenizer_config(out)
    shape = SHAPES[args.shape]
    config = LlamaConfig(
        vocab_size=49152,
        **{"num_key_value_heads": shape["num_attention_heads"], **shape},
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        rope_theta=130000,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    # The converter pads the small test vocabulary to 49152 with [PAD] ids, and control, unknown and
    # byte pieces print nothing either: with random logits greedy decoding picks such ids most of the
    # time, the server streams no text for them, and clients see too few content chunks to time TTFT
    # and ITL. Zero their rows of the tied embedding (logit 0, below the max of the random logits of
    # the ordinary pieces) so every generated token is visible text; the bytes moved do not change.
    import sentencepiece as spm  # noqa: PLC0415 - where torch is

    sp = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
    hidden = torch.ones(config.vocab_size, dtype=torch.bool)
    for i in range(sp.get_piece_size()):
        if not (sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i) or sp.is_unused(i)):
            hidden[i] = False
    with torch.no_grad():
        weight = model.get_input_embeddings().weight
        weight[hidden.to(weight.device)] = 0
    model.save_pretrained(out)  # safetensors by default in transformers 4.x and 5.x
    print(sum(p.numel() for p in model.parameters()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
