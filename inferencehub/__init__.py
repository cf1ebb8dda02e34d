"""InferenceHub: an offline inference appliance for ONNX models."""

__version__ = "0.1.0"
# Where clients find a hub started with the defaults (gateway.host, gateway.http_port). Here,
# not in the SDK, so the CLI can show it in --help without importing httpx and numpy.
DEFAULT_URL = "http://127.0.0.1:8000"
