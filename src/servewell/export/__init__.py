"""PyTorch modules to ONNX, and the text classifier built on a sentence encoder."""
