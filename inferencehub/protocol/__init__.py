"""Wire-level helpers shared by the gateway, the worker and the client SDK."""
