"""Making a registered version smaller and faster: ONNX conversion, quantization, graph
optimizations, verified against the source and gated, then registered as its child."""
