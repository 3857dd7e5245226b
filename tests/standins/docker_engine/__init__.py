"""A Docker Engine API stand-in, for training in the user's own image."""
