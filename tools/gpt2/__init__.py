"""Tiny GPT-2 language model tools: model (HF GPT-2 names), byte-level BPE trainer, training, export, golden vectors."""
