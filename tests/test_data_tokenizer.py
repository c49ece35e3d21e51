"""Offline question tokenizer: deterministic vocabulary, encoding layout, save/load."""

import subprocess
import sys

import numpy as np
import pytest

from f3ocus_ray.data import (
    CLASSIFICATION_PROMPT,
    DataError,
    encode_questions,
    generate_vqa,
    load_tokenizer,
    tokenizer_from_json,
    tokenizer_to_json,
    train_tokenizer,
)

CORPUS = [s.question for s in generate_vqa(scale=0.0, min_per_client=12, image_size=8)]


def test_special_token_ids():
    tok = train_tokenizer(CORPUS)
    ids = [tok.backend.token_to_id(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")]
    assert ids == [0, 1, 2, 3, 4]
    assert (tok.pad_id, tok.cls_id, tok.sep_id) == (0, 2, 3)


def test_same_corpus_same_vocabulary_even_in_another_process():
    a, b = train_tokenizer(CORPUS, 300), train_tokenizer(list(CORPUS), 300)
    assert a.backend.to_str() == b.backend.to_str()
    code = (
        "from f3ocus_ray.data import generate_vqa, train_tokenizer\n"
        "qs = [s.question for s in generate_vqa(scale=0.0, min_per_client=12, image_size=8)]\n"
        "print(train_tokenizer(qs, 300).backend.to_str())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == a.backend.to_str()


def test_vocab_size_caps_the_vocabulary():
    big, small = train_tokenizer(CORPUS, 500), train_tokenizer(CORPUS, 90)
    assert small.vocab_size == 90 < big.vocab_size <= 500
    with pytest.raises(DataError, match="too small"):
        train_tokenizer(CORPUS, 20)
    # frequent whole words survive a small vocabulary
    assert small.backend.encode("what is the diagnosis?").tokens[1:-1] == [
        "what",
        "is",
        "the",
        "diagnosis",
        "?",
    ]


def test_encoding_layout_padding_and_truncation():
    tok = train_tokenizer(CORPUS)
    questions = ["What is the DIAGNOSIS?", "which eye?", CLASSIFICATION_PROMPT]
    ids, mask = encode_questions(tok, questions, max_length=12)
    assert ids.shape == mask.shape == (3, 12) and ids.dtype == mask.dtype == np.int64
    n = mask.sum(axis=1)
    assert list(n) == [7, 5, 6]  # [CLS] + words (+ "?") + [SEP]
    for row, k in zip(ids, n, strict=True):
        assert row[0] == tok.cls_id and row[k - 1] == tok.sep_id and (row[k:] == tok.pad_id).all()
    assert tok.decode(ids[0]) == "what is the diagnosis?"  # lower-cased
    np.testing.assert_array_equal(mask, (ids != 0).astype(np.int64))
    short, short_mask = encode_questions(tok, questions, max_length=4)
    assert short.shape == (3, 4) and (short_mask == 1).all()
    assert (short[:, 0] == tok.cls_id).all() and (short[:, -1] == tok.sep_id).all()
    np.testing.assert_array_equal(short[:, :3], ids[:, :3])


def test_unseen_words_are_spelt_out_not_lost():
    tok = train_tokenizer(CORPUS)
    pieces = tok.backend.encode("zebra €").tokens
    assert pieces[1:-2] == ["z", "##e", "##b", "##r", "##a"]
    assert pieces[-2] == "[UNK]"


def test_save_load_round_trip_and_transformers_compatibility(tmp_path):
    tok = train_tokenizer(CORPUS)
    folder = tok.save(tmp_path / "tok")
    assert (folder / "tokenizer.json").is_file() and (folder / "tokenizer_config.json").is_file()
    again = load_tokenizer(folder)
    ids_a, mask_a = encode_questions(tok, CORPUS[:20], 16)
    ids_b, mask_b = encode_questions(again, CORPUS[:20], 16)
    np.testing.assert_array_equal(ids_a, ids_b)
    np.testing.assert_array_equal(mask_a, mask_b)

    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast.from_pretrained(str(folder))
    assert hf.pad_token_id == 0 and hf.cls_token_id == 2 and hf.sep_token_id == 3
    enc = hf(CORPUS[:20], padding="max_length", max_length=16, truncation=True)
    np.testing.assert_array_equal(np.array(enc["input_ids"]), ids_a)
    ids_c, _ = encode_questions(hf, CORPUS[:20], 16)  # the HF wrapper is accepted too
    np.testing.assert_array_equal(ids_c, ids_a)
    ids_d, _ = encode_questions(tok.to_transformers(), CORPUS[:20], 16)
    np.testing.assert_array_equal(ids_d, ids_a)


def test_json_round_trip_for_shipping_to_workers():
    tok = train_tokenizer(CORPUS)
    text = tokenizer_to_json(tok)
    again = tokenizer_from_json(text)
    assert again.get_vocab_size() == tok.vocab_size
    np.testing.assert_array_equal(
        encode_questions(again, CORPUS, 16)[0], encode_questions(tok, CORPUS, 16)[0]
    )
    assert tokenizer_to_json(tok.backend) == text
    with pytest.raises(DataError, match="cannot read tokenizer JSON"):
        tokenizer_from_json("{}")


def test_load_errors(tmp_path):
    with pytest.raises(DataError, match="tokenizer file not found"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(DataError, match="cannot read tokenizer"):
        load_tokenizer(tmp_path)
