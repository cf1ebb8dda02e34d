"""InferenceHub: an offline inference appliance for ONNX models."""

__version__ = "0.1.0"
