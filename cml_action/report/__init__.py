"""Markdown report: the model (sections), the renderer, and shortening to a forge's limit."""
