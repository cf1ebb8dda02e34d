"""The supervisor: starts, watches and stops the worker and the gateway (no grpc, no ORT)."""
