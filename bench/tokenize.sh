#!/usr/bin/env bash
# Tokenization throughput, Kondate against the reference packages on the same text (the example
# corpus, 2.8 MB): SentencePiece (llmjp-unigram.model, as llm-jp's tokenizers) against `sentencepiece`,
# byte-level BPE (bytelevel-bpe.json) and a converted Unigram tokenizer.json against `tokenizers`.
# Needs: pip install sentencepiece tokenizers. Prints MB/s of UTF-8 text per thread count.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product kondate >/dev/null
bin=.build/release/kondate
fixtures=Tests/KondateTokenizersTests/Fixtures/tokenizers
corpus=$(mktemp)
trap 'rm -f "$corpus"' EXIT
cat examples/tiny/data/ja.jsonl examples/tiny/data/en.jsonl examples/tiny/data/code.jsonl > "$corpus"

echo "== SentencePiece unigram (llm-jp options)"
$bin bench tokenize --tokenizer $fixtures/spm/llmjp-unigram.model --file "$corpus" --threads 2
python3 bench/tokenize_spm.py --model $fixtures/spm/llmjp-unigram.model --threads 2
echo "== SentencePiece BPE with byte fallback"
$bin bench tokenize --tokenizer $fixtures/spm/bpe-bytefallback.model --file "$corpus" --threads 2
python3 bench/tokenize_spm.py --model $fixtures/spm/bpe-bytefallback.model --threads 2
echo "== tokenizer.json byte-level BPE"
$bin bench tokenize --tokenizer $fixtures/hf/bytelevel-bpe.json --file "$corpus" --threads 2
python3 bench/tokenize_hf.py --tokenizer $fixtures/hf/bytelevel-bpe.json
echo "== tokenizer.json Unigram with byte fallback"
$bin bench tokenize --tokenizer $fixtures/hf/unigram-bytefallback.json --file "$corpus" --threads 2
python3 bench/tokenize_hf.py --tokenizer $fixtures/hf/unigram-bytefallback.json
