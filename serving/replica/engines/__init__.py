"""Engines: the `Engine` protocol, the vLLM adapter (the only module importing
vLLM) and a fake with the same interface for unit tests."""
