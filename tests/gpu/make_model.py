"""A random-weight Llama with SmolLM2-1.7B-Instruct's shape, for GPU throughput figures.

Real weights cannot be fetched on the GPU host; decode speed depends on the shape and
the bytes moved, not on the values, so random weights give real serving numbers (the
text is noise). Uses the test tokenizer (padded to the vocabulary by the converter).

  python3 make_model.py OUT_DIR TOKENIZER_DIR
"""

import shutil
import sys
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

out, tok = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
config = LlamaConfig(
    vocab_size=49152,
    hidden_size=2048,
    intermediate_size=8192,
    num_hidden_layers=24,
    num_attention_heads=32,
    num_key_value_heads=32,
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
import sentencepiece as spm

sp = spm.SentencePieceProcessor(model_file=str(tok / "tokenizer.model"))
hidden = torch.ones(config.vocab_size, dtype=torch.bool)
for i in range(sp.get_piece_size()):
    if not (sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i) or sp.is_unused(i)):
        hidden[i] = False
with torch.no_grad():
    weight = model.get_input_embeddings().weight
    weight[hidden.to(weight.device)] = 0
model.save_pretrained(out)  # safetensors by default in transformers 4.x and 5.x
for name in ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"):
    shutil.copy(tok / name, out / name)
print(sum(p.numel() for p in model.parameters()))
