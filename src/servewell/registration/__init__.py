"""Registering a model: check the file, prove its signature, convert to ONNX, store, record."""
