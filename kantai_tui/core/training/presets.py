"""Model presets: sizes, parameter breakdown, training memory and FLOPs per token.

``kantai`` is the tutorial's ``RobertaConfig(vocab_size=52_000, max_position_embeddings=514,
num_attention_heads=12, num_hidden_layers=6, type_vocab_size=1)``: 83,504,416 parameters in
today's ``RobertaForMaskedLM``. The tutorial printed 84,095,008 because the transformers of its
day also built the 590,592-parameter pooler, which masked-LM training never uses.
``tiny`` and ``small`` take their vocabulary size from the trained tokenizer, rounded up to a
multiple of 64 (friendlier matmul shapes); ``kantai`` keeps 52,000 as the tutorial did.

The counts are computed from the shapes, so the TUI can show them without importing torch;
a test checks them against a real model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from kantai_tui.core.errors import BadInputError

if TYPE_CHECKING:
    from transformers import RobertaConfig

TUTORIAL_PARAMS = 84_095_008
POOLER_PARAMS = 590_592
MAX_POSITIONS = 514  # 512 tokens + RoBERTa's padding offset of 2


@dataclass(frozen=True)
class Preset:
    """The shape of a RoBERTa encoder; ``vocab_size`` None means "from the tokenizer"."""

    name: str
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int | None = None
    max_positions: int = MAX_POSITIONS
    description: str = ""


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", 128, 2, 2, 512, description="falls visibly within minutes on 2 CPU cores"),
    "small": Preset("small", 256, 4, 4, 1024, description="between tiny and the tutorial's model"),
    "kantai": Preset("kantai", 768, 6, 12, 3072, vocab_size=52_000, description="the tutorial's RobertaConfig"),
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``, or a BadInputError listing the choices."""
    try:
        return PRESETS[name]
    except KeyError:
        raise BadInputError(f"--preset {name!r} is not one of {', '.join(PRESETS)}") from None


def model_vocab_size(preset: Preset, tokenizer_vocab: int) -> int:
    """Embedding rows: the preset's fixed size, or the tokenizer's rounded up to a multiple of 64."""
    if preset.vocab_size is not None:
        if tokenizer_vocab > preset.vocab_size:
            raise BadInputError(
                f"the tokenizer has {tokenizer_vocab:,} tokens but preset {preset.name!r} has only "
                f"{preset.vocab_size:,} embedding rows; train a smaller tokenizer or use another preset"
            )
        return preset.vocab_size
    return -(-tokenizer_vocab // 64) * 64


@dataclass(frozen=True)
class ModelSize:
    """What a preset costs with a given vocabulary, batch and block size."""

    preset: str
    vocab_size: int
    unused_rows: int
    embeddings: int
    encoder: int
    lm_head: int
    total: int
    train_memory_bytes: int
    train_flops_per_token: int

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)


def model_size(
    preset: Preset, tokenizer_vocab: int, batch_size: int = 64, block_size: int = 128, head_fraction: float = 0.15
) -> ModelSize:
    """Parameters by part, fp32 AdamW training memory, and training FLOPs per token.

    ``head_fraction`` is the share of positions that go through the LM head (0.15 when it runs
    at masked positions only, 1.0 for the classic full head).
    """
    vocab = model_vocab_size(preset, tokenizer_vocab)
    h, inter, layers = preset.hidden, preset.intermediate, preset.layers
    embeddings = vocab * h + preset.max_positions * h + h + 2 * h  # words, positions, 1 token type, LayerNorm
    per_layer = 4 * (h * h + h) + 2 * h + (h * inter + inter) + (inter * h + h) + 2 * h
    encoder = layers * per_layer
    lm_head = h * h + h + 2 * h + vocab  # dense, LayerNorm, decoder bias (decoder weight tied to embeddings)
    total = embeddings + encoder + lm_head
    forward: float = 2 * layers * (4 * h * h + 2 * h * inter) + layers * 4 * block_size * h
    forward += head_fraction * (2 * h * h + 2 * h * vocab)
    # weights + grads + AdamW moments in fp32, plus fp32 activations (Korthikanti et al., doubled for fp32)
    activations = layers * batch_size * block_size * h * (34 + 5 * preset.heads * block_size / h) * 2
    return ModelSize(
        preset=preset.name,
        vocab_size=vocab,
        unused_rows=vocab - tokenizer_vocab,
        embeddings=embeddings,
        encoder=encoder,
        lm_head=lm_head,
        total=total,
        train_memory_bytes=int(16 * total + activations),
        train_flops_per_token=int(3 * forward),
    )


def roberta_config(
    preset: Preset, tokenizer_vocab: int, dropout: float = 0.1, attention: str | None = None
) -> RobertaConfig:
    """The transformers ``RobertaConfig`` for a preset (imports transformers); ``attention`` picks the
    attention implementation ("sdpa", "eager"; None: transformers' default, SDPA)."""
    from transformers import RobertaConfig

    extra: dict[str, Any] = {"attn_implementation": attention} if attention else {}
    return RobertaConfig(
        **extra,
        vocab_size=model_vocab_size(preset, tokenizer_vocab),
        hidden_size=preset.hidden,
        num_hidden_layers=preset.layers,
        num_attention_heads=preset.heads,
        intermediate_size=preset.intermediate,
        max_position_embeddings=preset.max_positions,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
