"""Generated code for proto/inferencehub/v1; regenerate with scripts/gen_proto.sh."""
