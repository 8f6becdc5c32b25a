"""Fill-mask: load a model once (a run's final/, any verified checkpoint, or any RoBERTa-style folder), answer prompts.

Each ``<mask>`` gets its own ranked list from one forward pass. The lists are independent:
each is what the model predicts for that position with every other mask still masked (they
are not a joint guess). Probabilities are a softmax over the tokenizer's real tokens only, so
the embedding rows a preset adds for alignment never take probability mass.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from kantai_tui.core.errors import BadInputError, CorruptCheckpointError
from kantai_tui.core.tokenizer.bpe import load_tokenizer, special_id
from kantai_tui.core.tokenizer.vocab import readable, token_bytes
from kantai_tui.core.training import checkpoint

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer
    from transformers import RobertaForMaskedLM

MASK = "<mask>"


@dataclass(frozen=True)
class Candidate:
    """One prediction for one mask."""

    token: str
    token_id: int
    text: str
    score: float
    sequence: str


@dataclass(frozen=True)
class MaskPrediction:
    """The ranked candidates for the mask at token ``position`` (the ``index``-th mask of the text)."""

    index: int
    position: int
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True)
class FillResult:
    """Predictions for every mask in a text; with several masks, each list is independent."""

    text: str
    source: str
    masks: tuple[MaskPrediction, ...]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["independent"] = len(self.masks) > 1
        return data


@dataclass(frozen=True)
class ModelSource:
    """Where the weights, config and tokenizer of a model come from."""

    label: str
    weights_dir: Path
    tokenizer_dir: Path
    run_config: dict | None  # set for a training checkpoint, which has weights but no config.json


OnSkip = Callable[[Path, str], None]


def resolve_source(
    target: str | Path, runs_dir: str | Path = "runs", step: int | None = None, on_skip: OnSkip | None = None
) -> ModelSource:
    """A run name, a run folder, a final/ or checkpoint folder, or any folder with config.json + tokenizer.

    ``on_skip`` hears about each newer checkpoint passed over because it does not verify.
    """
    path = Path(target).expanduser()
    if not path.exists() and "/" not in str(target):
        path = Path(runs_dir).expanduser() / str(target)
    if not path.is_dir():
        raise BadInputError(f"{target}: no such model folder or run (looked in {Path(runs_dir).expanduser()})")
    if (path / "run.json").is_file():
        return _from_run(path, step, on_skip)
    if (path / checkpoint.COMPLETE).exists() or (path / checkpoint.MANIFEST).exists():
        return _from_checkpoint(path.parent.parent, path)
    if step is not None:
        raise BadInputError(f"--checkpoint needs a run, and {path} is not a run folder")
    if not (path / "config.json").is_file() or not (path / "tokenizer.json").is_file():
        raise BadInputError(f"{path}: not a model folder (needs config.json, model weights and tokenizer.json)")
    return ModelSource(str(path), path, path, None)


def _from_run(run_dir: Path, step: int | None, on_skip: OnSkip | None) -> ModelSource:
    """final/ by default; the newest verified checkpoint while the run has no final/ yet; or --checkpoint STEP."""
    if step is None and (run_dir / "final" / "config.json").is_file():
        return ModelSource(f"{run_dir.name}/final", run_dir / "final", run_dir / "final", None)
    root = run_dir / "checkpoints"
    if step is None:
        newest = checkpoint.newest_verified(root, on_skip)
        if newest is None:
            raise BadInputError(f"run {run_dir.name} has no final/ and no verified checkpoint yet")
        return _from_checkpoint(run_dir, newest.path)
    path = root / f"{checkpoint.PREFIX}{step:08d}"
    if not path.is_dir():
        steps = ", ".join(str(s) for s, _ in checkpoint.list_checkpoints(root)) or "none"
        raise BadInputError(f"run {run_dir.name} has no checkpoint at step {step} (it has: {steps})")
    return _from_checkpoint(run_dir, path)


def _from_checkpoint(run_dir: Path, path: Path) -> ModelSource:
    reason = checkpoint.verify(path)
    if reason is not None:
        raise CorruptCheckpointError(f"checkpoint {path} fails verification: {reason}")
    config = json.loads((run_dir / "run.json").read_text())["config"]
    return ModelSource(f"{run_dir.name}/{path.name}", path, run_dir / "tokenizer", config)


def check_prompt(text: str, top_k: int = 5) -> None:
    """What can be said of a prompt without the model: the CLI checks it before a load of seconds."""
    if MASK not in text:
        raise BadInputError(f"no {MASK} in the text: put {MASK} where the model should fill in a word")
    if top_k < 1:
        raise BadInputError(f"--top-k {top_k} must be at least 1")


class FillMask:
    """A loaded model and tokenizer; ``predict`` answers one prompt with one forward pass."""

    def __init__(self, source: ModelSource, model: RobertaForMaskedLM | None = None) -> None:
        self.source = source
        self.tokenizer: Tokenizer = load_tokenizer(source.tokenizer_dir)
        self.tokenizer.no_truncation()
        self.vocab = self.tokenizer.get_vocab_size()
        self.mask_id = special_id(self.tokenizer, MASK)
        if model is None:
            model = _load_model(source)
            model.eval()
        self.model = model
        self.max_tokens = self.model.config.max_position_embeddings - 2

    @classmethod
    def from_model(cls, model: RobertaForMaskedLM, tokenizer_dir: Path, label: str) -> FillMask:
        """Wrap a model already in memory (the trainer's, for probes); the caller sets eval/train mode."""
        return cls(ModelSource(label, tokenizer_dir, tokenizer_dir, None), model)

    @classmethod
    def open(
        cls, target: str | Path, runs_dir: str | Path = "runs", step: int | None = None, on_skip: OnSkip | None = None
    ) -> FillMask:
        return cls(resolve_source(target, runs_dir, step, on_skip))

    def predict(self, text: str, top_k: int = 5) -> FillResult:
        import torch

        check_prompt(text, top_k)
        ids = self.tokenizer.encode(text).ids
        if len(ids) > self.max_tokens:
            raise BadInputError(
                f"the text is {len(ids)} tokens (with <s> and </s>); this model takes at most {self.max_tokens}"
            )
        positions = [i for i, t in enumerate(ids) if t == self.mask_id]
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            logits = self._mask_logits(torch.tensor([ids], device=device), positions)[:, : self.vocab]  # [M, V]
        probs = logits.float().softmax(-1).cpu()
        top = probs.topk(min(top_k, self.vocab), dim=-1)
        masks = tuple(
            MaskPrediction(
                n,
                pos,
                tuple(
                    self._candidate(ids, pos, int(i), float(p))
                    for p, i in zip(top.values[n], top.indices[n], strict=True)
                ),
            )
            for n, pos in enumerate(positions)
        )
        return FillResult(text, self.source.label, masks)

    def _mask_logits(self, input_ids: torch.Tensor, positions: list[int]) -> torch.Tensor:
        """Logits at the mask positions only: the LM head (H×V per position) costs more than the encoder
        for short prompts, so RoBERTa-style models run it on M positions instead of all T."""
        encoder, head = getattr(self.model, "roberta", None), getattr(self.model, "lm_head", None)
        if encoder is None or head is None:  # another masked-LM architecture: the plain forward
            return self.model(input_ids=input_ids).logits[0, positions]
        hidden = encoder(input_ids=input_ids).last_hidden_state  # [1, T, H]
        return head(hidden[0, positions])  # [M, V]

    def _candidate(self, ids: list[int], position: int, token_id: int, score: float) -> Candidate:
        filled = ids[1:-1]
        filled[position - 1] = token_id
        token = self.tokenizer.id_to_token(token_id) or ""  # ids come from the model's own vocabulary
        return Candidate(
            token,
            token_id,
            readable(token_bytes(token)),
            score,
            self.tokenizer.decode(filled, skip_special_tokens=False),
        )


def _load_model(source: ModelSource) -> RobertaForMaskedLM:
    from transformers import RobertaForMaskedLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if source.run_config is None:
        try:
            loaded = RobertaForMaskedLM.from_pretrained(source.weights_dir, output_loading_info=True)
            model, info = cast("tuple[RobertaForMaskedLM, dict]", loaded)  # a pair with output_loading_info
        except Exception as err:
            first = str(err).splitlines()[0] if str(err) else ""
            raise BadInputError(
                f"{source.weights_dir}: cannot be loaded as a masked LM ({type(err).__name__}: {first[:200]})"
            ) from err
        lost = [
            *info.get("missing_keys", ()),
            *(k[0] if isinstance(k, tuple) else k for k in info.get("mismatched_keys", ())),
        ]
        if lost:  # transformers would fill these with random weights: predictions would be noise
            raise BadInputError(
                f"{source.weights_dir}: the weights do not fit its config.json ({len(lost)} tensors "
                f"missing or of another shape, e.g. {min(lost)})"
            )
        return model
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    from kantai_tui.core.training.presets import get_preset, roberta_config

    tokenizer_vocab = load_tokenizer(source.tokenizer_dir).get_vocab_size()
    model = RobertaForMaskedLM(roberta_config(get_preset(source.run_config["preset"]), tokenizer_vocab))
    try:
        load_model(model, str(source.weights_dir / "model.safetensors"))
    except (SafetensorError, RuntimeError) as err:  # verified bytes that are still not this model's weights
        raise CorruptCheckpointError(
            f"{source.weights_dir}: weights cannot be loaded ({str(err).splitlines()[0]})"
        ) from err
    return model
