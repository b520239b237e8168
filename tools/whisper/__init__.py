"""Whisper speech recognition tools: PyTorch reference (OpenAI names), tiktoken tokenizer, checkpoint converter,
golden vectors for the C++ plugin."""
