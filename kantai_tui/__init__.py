"""kantai: a terminal workbench for pretraining a RoBERTa masked language model from scratch."""

__version__ = "0.1.0"
