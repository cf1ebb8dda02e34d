"""The gateway: public HTTP and gRPC, validation and routing; it never computes."""
