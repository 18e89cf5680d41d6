"""Writes tokenizer.json beside a model folder's SentencePiece `spm.model` (DeBERTa-v3, mDeBERTa-v3),
with transformers' own converter, so that simcse reads the folder:

  pip install transformers sentencepiece protobuf
  python3 scripts/spm-to-tokenizer-json.py path/to/mdeberta-v3-base

The folder's tokenizer_config.json (specials, lower-casing) is honoured; nothing else is changed.
"""
import pathlib, sys

from transformers import AutoTokenizer

d = pathlib.Path(sys.argv[1])
if not (d / "spm.model").is_file():
    sys.exit(f"{d}: no spm.model")
if (d / "tokenizer.json").exists():
    sys.exit(f"{d}: tokenizer.json exists already")
tok = AutoTokenizer.from_pretrained(d)
tok.backend_tokenizer.save(str(d / "tokenizer.json"))
print(f"{d / 'tokenizer.json'}: {len(tok)} tokens from spm.model")
