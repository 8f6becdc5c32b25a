"""Core: corpus, tokenizer, training, runs and inference, without any front end."""
