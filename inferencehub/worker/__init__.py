"""The compute worker: model repository, ONNX Runtime sessions, pre/post-processing."""
