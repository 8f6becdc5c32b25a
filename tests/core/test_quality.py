"""Quality measures beyond the loss: content-word accuracy and the held-out cloze set (quality.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kantai_tui.core.tokenizer.bpe import load_tokenizer
from kantai_tui.core.training.data import open_token_cache, split_lines
from kantai_tui.core.training.quality import (
    FREQUENT,
    cloze_batches,
    cloze_hits,
    cloze_prompts,
    content_table,
    frequent_ids,
)
from kantai_tui.core.training.step import Evaluator


def _setup(corpus: Path, tokenizer_dir: Path) -> tuple:
    tokenizer = load_tokenizer(tokenizer_dir)
    cache = open_token_cache(corpus, tokenizer_dir)
    return tokenizer, cache, content_table(cache, tokenizer)


def test_content_tokens_exclude_the_frequent_punctuation_and_specials(
    small_corpus: Path, small_tokenizer: Path
) -> None:
    tokenizer, cache, content = _setup(small_corpus, small_tokenizer)
    frequent = frequent_ids(cache, tokenizer.get_vocab_size())
    assert len(frequent) == FREQUENT and not content[frequent].any()
    for word in (" the", " of", ",", "."):
        assert not content[tokenizer.token_to_id(tokenizer.encode(word).tokens[0])], word
    assert not content[:5].any()  # <s> <pad> </s> <unk> <mask>
    for word in ("Ġhappiness", "Ġexperience"):  # rarer words are content
        assert content[tokenizer.token_to_id(word)], word
    for word in ("Ġthe", "Ġreason", "Ġmoral"):  # so frequent in Kant's Practical Reason that they are not
        assert tokenizer.token_to_id(word) in set(frequent.tolist()), word


def test_cloze_prompts_mask_one_whole_content_word_of_a_held_out_line(
    small_corpus: Path, small_tokenizer: Path
) -> None:
    tokenizer, cache, content = _setup(small_corpus, small_tokenizer)
    _, held = split_lines(cache.lines, 0.05, 42)
    prompts = cloze_prompts(cache, held, tokenizer, content)
    assert len(prompts) >= 40
    again = cloze_prompts(cache, held, tokenizer, content)
    assert [(p.ids.tolist(), p.position) for p in prompts] == [(p.ids.tolist(), p.position) for p in again]
    for prompt in prompts:
        word = tokenizer.id_to_token(prompt.answer)
        following = tokenizer.id_to_token(int(prompt.ids[prompt.position + 1]))
        assert word.startswith("Ġ") and word[1:].isalpha() and content[prompt.answer]
        assert following.startswith("Ġ") or following == "</s>" or not any(c.isalnum() for c in following)
    inputs = cloze_batches(prompts, mask_id=4)[0][0]
    assert (inputs == 4).sum(dim=1).eq(1).all()  # exactly one mask per prompt


class Oracle(torch.nn.Module):
    """A 'model' that answers every cloze prompt right: its LM head puts the answer first (a test double for
    scoring only; the real models are scored in the training tests and the benchmark)."""

    def __init__(self, answers: torch.Tensor, vocab: int) -> None:
        super().__init__()
        self.answers, self.vocab, self.row = answers, vocab, 0

    def roberta(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> object:
        return type("Out", (), {"last_hidden_state": torch.zeros(*input_ids.shape, 1)})()

    def lm_head(self, rows: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(len(rows), self.vocab)
        logits[range(len(rows)), self.answers[self.row : self.row + len(rows)]] = 1.0
        self.row += len(rows)
        return logits


def test_cloze_hits_count_top1_and_top5(small_corpus: Path, small_tokenizer: Path) -> None:
    tokenizer, cache, content = _setup(small_corpus, small_tokenizer)
    _, held = split_lines(cache.lines, 0.05, 42)
    prompts = cloze_prompts(cache, held, tokenizer, content)
    answers = torch.tensor([p.answer for p in prompts])
    assert cloze_hits(Oracle(answers, tokenizer.get_vocab_size()), cloze_batches(prompts, 4), "cpu") == (1.0, 1.0)
    wrong = torch.tensor([(a + 1) % tokenizer.get_vocab_size() for a in answers.tolist()])
    assert cloze_hits(Oracle(wrong, tokenizer.get_vocab_size()), cloze_batches(prompts, 4), "cpu") == (0.0, 0.0)


def test_the_evaluator_reports_content_accuracy_and_cloze_hits(small_corpus: Path, small_tokenizer: Path) -> None:
    from transformers import RobertaForMaskedLM

    from kantai_tui.core.training.presets import get_preset, roberta_config

    tokenizer, cache, content = _setup(small_corpus, small_tokenizer)
    _, held = split_lines(cache.lines, 0.05, 42)
    prompts = cloze_prompts(cache, held, tokenizer, content)
    evaluate = Evaluator(cache, held, 4, tokenizer.get_vocab_size(), content=content, cloze=prompts)
    torch.manual_seed(0)
    model = RobertaForMaskedLM(roberta_config(get_preset("tiny"), tokenizer.get_vocab_size(), 0.0, "eager"))
    result = evaluate(model, "cpu", lambda: torch.autocast("cpu", enabled=False))
    assert result is not None and set(result) == {
        "eval_loss",
        "perplexity",
        "mask_acc",
        "content_acc",
        "cloze_hits1",
        "cloze_hits5",
    }
    assert all(0.0 <= result[k] <= 1.0 for k in ("mask_acc", "content_acc", "cloze_hits1", "cloze_hits5"))
    assert result["cloze_hits1"] <= result["cloze_hits5"]
    assert np.isfinite(result["eval_loss"])
