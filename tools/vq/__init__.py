"""Small VQGAN image tokenizer (taming-transformers layout, min-dalle detokenizer names) and its trainer."""
