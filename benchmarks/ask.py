"""Ask a trained model the tutorial's question as a user would: ``transformers.pipeline("fill-mask")`` on its
``final/`` folder. Prints the top 5 and whether ``reason`` is in the top 2 (the issue's target); exit 0
either way, the answer is the measurement. Run: ``python benchmarks/ask.py runs/RUN/final [PROMPT]``"""

from __future__ import annotations

import json
import sys

PROMPT = "Human thinking involves human <mask>."


def main() -> None:
    from transformers import pipeline

    final = sys.argv[1]
    prompt = sys.argv[2] if len(sys.argv) > 2 else PROMPT
    fill = pipeline("fill-mask", model=final, tokenizer=final)
    top = [(row["token_str"].strip(), round(row["score"], 3)) for row in fill(prompt, top_k=5)]
    words = [word for word, _ in top]
    print(json.dumps({"prompt": prompt, "top5": top, "reason_in_top2": "reason" in words[:2]}))


if __name__ == "__main__":
    main()
