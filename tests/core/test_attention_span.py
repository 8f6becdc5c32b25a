"""--attention-span line: attention kept inside each line of a packed block, positions restarting per line."""

from __future__ import annotations

from pathlib import Path

import torch

from kantai_tui.core.training.config import TrainConfig
from kantai_tui.core.training.events import RunFinished
from kantai_tui.core.training.step import line_attention
from kantai_tui.core.training.trainer import Trainer


def test_lines_see_only_themselves_and_count_positions_from_their_start() -> None:
    block = torch.tensor([[0, 10, 11, 2, 12, 13, 14, 2, 15, 2]])  # <s> a b </s> c d e </s> f </s>
    mask, positions = line_attention(block)
    assert positions.tolist() == [[2, 3, 4, 5, 3, 4, 5, 6, 3, 4]]  # later lines as if after an <s>
    visible = (mask[0, 0] == 0).int()
    assert visible[1].tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]  # line 1 (with <s> and its </s>)
    assert visible[5].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 0, 0]
    assert visible[9].tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 1, 1]


def test_a_prediction_does_not_change_when_another_line_does(
    small_corpus: Path, small_tokenizer: Path, tmp_path: Path
) -> None:
    """The model under the line mask: changing line 1's tokens leaves line 2's outputs as they were."""
    cfg = TrainConfig(
        corpus=str(small_corpus), tokenizer_dir=str(small_tokenizer), block_size=32, batch_size=4, max_steps=1
    ).resolved()
    model = Trainer(cfg, tmp_path / "run").model.eval()
    first = torch.tensor([[0, 300, 301, 302, 2, 400, 401, 402, 2]])
    second = torch.tensor([[0, 500, 501, 502, 2, 400, 401, 402, 2]])
    outputs = []
    for ids in (first, second):
        mask, positions = line_attention(ids)
        with torch.no_grad():
            outputs.append(model.roberta(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state)
    assert torch.allclose(outputs[0][0, 5:], outputs[1][0, 5:], atol=1e-5)
    assert not torch.allclose(outputs[0][0, 1:4], outputs[1][0, 1:4], atol=1e-3)


def test_a_line_span_run_trains_and_exports_a_plain_model(
    small_corpus: Path, small_tokenizer: Path, tmp_path: Path
) -> None:
    from transformers import pipeline

    cfg = TrainConfig(
        corpus=str(small_corpus),
        tokenizer_dir=str(small_tokenizer),
        block_size=32,
        batch_size=4,
        max_steps=6,
        attention_span="line",
        log_every=2,
    ).resolved()
    finished = list(Trainer(cfg, tmp_path / "run").events())[-1]
    assert isinstance(finished, RunFinished) and finished.final_dir
    fill = pipeline("fill-mask", model=finished.final_dir, tokenizer=finished.final_dir)
    assert len(fill("Human thinking involves human <mask>.")) == 5
