"""Tang et al.'s augmented transfer set (kd.augment_reviews): the rates of masking, replacement and n-gram
sampling, replacements drawn from the masked LM's own top-k and never the word itself, seeded, model left as found."""
import dataclasses
import random

import datasets
import kd
import pytest
import torch
from kd.augment import draw, words
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

TOKENIZER = AutoTokenizer.from_pretrained(kd.SMOKE_DATA / "bert_base_uncased_tokenizer")


@pytest.fixture(scope="module")
def mlm():
    torch.manual_seed(0)
    return BertForMaskedLM(BertConfig(vocab_size=len(TOKENIZER), **kd.TINY_BERT)).eval()


def test_words_join_wordpiece_continuations():
    ids = TOKENIZER("unbelievably boring films", add_special_tokens=False)["input_ids"]
    groups = words(ids, TOKENIZER)
    assert [TOKENIZER.decode(g) for g in groups] == ["unbelievably", "boring", "films"]
    assert sum(map(len, groups)) == len(ids) > len(groups)  # at least one word of several pieces


TANG_ET_AL = {"p_mask": 0.1, "p_replace": 0.1, "p_ng": 0.25, "n_max": 5}  # their Section 3.3 (p_pos for p_replace)


def test_the_rates_are_tang_et_als():
    """The defaults are the paper's numbers (written here, not read from the config), and the sampler draws at them:
    a changed default or a sampler that ignores its rates fails."""
    cfg, rng = kd.AugmentConfig(), random.Random(0)
    assert {k: getattr(cfg, k) for k in TANG_ET_AL} == TANG_ET_AL
    groups = [[1000 + i] for i in range(400)]
    plans = [draw(groups, rng, dataclasses.replace(cfg, p_ng=0.0), mask_id=103) for _ in range(50)]
    cells = [w for p in plans for w in p]
    masked = sum(w == [103] for w in cells) / len(cells)
    replaced = sum(isinstance(w, tuple) for w in cells) / len(cells)
    assert masked == pytest.approx(cfg.p_mask, abs=0.01) and replaced == pytest.approx(cfg.p_replace, abs=0.01)
    cut = [draw(groups, rng, cfg, mask_id=103) for _ in range(2000)]
    short = [p for p in cut if len(p) <= cfg.n_max]
    assert len(short) / len(cut) == pytest.approx(cfg.p_ng, abs=0.03) and min(map(len, short)) == 1


def test_rewrites_are_seeded_unlabelled_and_replace_with_other_whole_words(mlm):
    texts = ["the film was long and unbelievably boring, but the ending was worth it"] * 3
    rows = datasets.Dataset.from_dict(TOKENIZER(texts, truncation=True, max_length=32))
    cfg = kd.AugmentConfig(p_mask=0.0, p_replace=1.0, p_ng=0.0)  # every word replaced
    before = {k: v.clone() for k, v in mlm.state_dict().items()}
    out = kd.augment_reviews(rows, mlm, TOKENIZER, cfg, rewrites=2, seed=0, max_len=32)
    again = kd.augment_reviews(rows, mlm, TOKENIZER, cfg, rewrites=2, seed=0, max_len=32)
    assert out["input_ids"] == again["input_ids"]  # the same seed, the same rewrites
    assert len(out) == 6 and set(out["labels"]) == {-1} and out["source_row"] == [0, 0, 1, 1, 2, 2]
    for ids in out["input_ids"]:
        body = ids[1:-1]
        assert ids[0] == TOKENIZER.cls_token_id and ids[-1] == TOKENIZER.sep_token_id
        assert not any(TOKENIZER.convert_ids_to_tokens(i).startswith("##") for i in body)  # whole words
        assert TOKENIZER.mask_token_id not in body and not set(body) & set(TOKENIZER.all_special_ids)
    assert all(torch.equal(v, before[k]) for k, v in mlm.state_dict().items()) and not mlm.training


def test_a_replacement_is_never_the_word_itself(mlm):
    rows = datasets.Dataset.from_dict(TOKENIZER(["film film film film film"], truncation=True, max_length=16))
    out = kd.augment_reviews(rows, mlm, TOKENIZER, kd.AugmentConfig(p_mask=0.0, p_replace=1.0, p_ng=0.0),
                             rewrites=20, seed=1, max_len=16)
    film = TOKENIZER.convert_tokens_to_ids("film")
    assert all(film not in ids for ids in out["input_ids"])
