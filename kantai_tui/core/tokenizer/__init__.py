"""Tokenizer: train, load and encode the byte-level BPE; the vocabulary and its search."""
