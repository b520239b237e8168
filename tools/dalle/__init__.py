"""Tiny DALL-E Mini (min-dalle layout) text-to-image tools: tokenizer, model, training, export, golden vectors."""
