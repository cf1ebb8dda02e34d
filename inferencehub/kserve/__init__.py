"""Generated code for proto/inferencehub/kserve (KServe v2); see scripts/gen_proto.sh."""
