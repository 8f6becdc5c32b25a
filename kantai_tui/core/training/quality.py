"""What the model knows, beyond its loss: content-word accuracy and a cloze set from the held-out lines.

Why: a masked LM that predicts ", the of to ." everywhere reaches a loss that looks like
progress (about 6 on the Kant books) and knows nothing. Two measures tell it apart:

- **content-word accuracy**: masked-token accuracy over the masked positions whose target is a
  *content* token — not among the corpus's 100 most frequent tokens, not punctuation, not special.
- **cloze hits@1 / @5**: one held-out line per prompt, one content *word* masked (a whole word that
  is a single token), the rest of the line given; a hit when the word is the top (or in the top 5)
  prediction. The prompts are drawn once from the held-out lines with a fixed seed, so every run
  on the same corpus, tokenizer and split is scored on the same questions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from kantai_tui.core.training.data import BOS, EOS, PAD, TokenCache, token_counts
from kantai_tui.core.training.masking import FIRST_REGULAR_ID

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer
    from transformers import RobertaForMaskedLM

FREQUENT = 100  # the most frequent tokens of the corpus are not content words
CLOZE_SEED = 20_261_201
MIN_CLOZE_LINE = 8  # tokens: a shorter line gives too little context to ask about
MIN_WORD_CHARS = 4


def token_texts(tokenizer: Tokenizer) -> list[str]:
    """Each id's text without the byte-level BPE's leading-space mark ('Ġreason' → 'reason')."""
    return [str(tokenizer.id_to_token(i)).removeprefix("Ġ") for i in range(tokenizer.get_vocab_size())]


def wordlike(texts: list[str]) -> np.ndarray:
    """[vocab] bool: the token has a letter or digit (punctuation and whitespace tokens do not)."""
    return np.array([any(c.isalnum() for c in text) for text in texts], dtype=bool)


def frequent_ids(cache: TokenCache, vocab: int, count: int = FREQUENT) -> np.ndarray:
    """The ``count`` most frequent token ids of the corpus (ties broken by id, so it is deterministic)."""
    counts = token_counts(cache, vocab)
    return np.lexsort((np.arange(len(counts)), -counts))[:count]


def content_table(cache: TokenCache, tokenizer: Tokenizer) -> np.ndarray:
    """[vocab] bool: True for content tokens (has a letter or digit, not special, not among the frequent)."""
    texts = token_texts(tokenizer)
    table = wordlike(texts)
    table[:FIRST_REGULAR_ID] = False
    table[frequent_ids(cache, len(texts))] = False
    return table


@dataclass(frozen=True)
class ClozePrompt:
    """A held-out line as ``<s> … </s>`` ids with the answer at ``position`` (still in place: masked at use)."""

    ids: np.ndarray
    position: int
    answer: int


def cloze_prompts(
    cache: TokenCache, lines: np.ndarray, tokenizer: Tokenizer, content: np.ndarray, block: int = 128
) -> list[ClozePrompt]:
    """One prompt per usable held-out line: a seeded pick among its whole-word content tokens of at least
    MIN_WORD_CHARS letters (a token that starts a word and is followed by a new word or punctuation)."""
    texts = token_texts(tokenizer)
    starts_word = np.array([str(tokenizer.id_to_token(i)).startswith("Ġ") for i in range(len(texts))])
    alphabetic = np.array([text.isalpha() and len(text) >= MIN_WORD_CHARS for text in texts])
    has_word = wordlike(texts)
    rng = np.random.default_rng(CLOZE_SEED)
    prompts = []
    for line in lines:
        ids = np.concatenate([[BOS], cache.line(int(line))[: block - 2].astype(np.int64), [EOS]])
        if len(ids) < MIN_CLOZE_LINE + 2:
            continue
        body, following = ids[1:-2], ids[2:-1]
        ends_word = starts_word[following] | ~has_word[following]
        usable = content[body] & starts_word[body] & alphabetic[body] & ends_word
        choices = np.flatnonzero(usable) + 1
        if len(choices):
            position = int(rng.choice(choices))
            prompts.append(ClozePrompt(ids, position, int(ids[position])))
    return prompts


def cloze_batches(
    prompts: list[ClozePrompt], mask_id: int, batch_size: int = 64
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(inputs [B, T] with the answer masked, attention [B, T], positions [B], answers [B]) per batch."""
    import torch

    batches = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        width = max(len(p.ids) for p in chunk)
        inputs = torch.full((len(chunk), width), PAD, dtype=torch.long)
        for row, prompt in enumerate(chunk):
            inputs[row, : len(prompt.ids)] = torch.from_numpy(prompt.ids)
            inputs[row, prompt.position] = mask_id
        positions = torch.tensor([p.position for p in chunk])
        answers = torch.tensor([p.answer for p in chunk])
        batches.append((inputs, (inputs != PAD).long(), positions, answers))
    return batches


def cloze_hits(
    model: RobertaForMaskedLM,
    batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]],
    device: str,
) -> tuple[float, float] | None:
    """(hits@1, hits@5) over the prompts; None without prompts. The caller sets eval mode and no_grad."""
    hit1 = hit5 = count = 0
    for inputs, attention, positions, answers in batches:
        hidden = model.roberta(input_ids=inputs.to(device), attention_mask=attention.to(device)).last_hidden_state
        rows = hidden[range(len(positions)), positions.to(device)]  # [B, H]
        top = model.lm_head(rows).float().topk(5, dim=-1).indices.cpu()  # [B, 5]
        hit1 += int((top[:, 0] == answers).sum())
        hit5 += int((top == answers[:, None]).any(-1).sum())
        count += len(answers)
    if not count:
        return None
    return hit1 / count, hit5 / count
