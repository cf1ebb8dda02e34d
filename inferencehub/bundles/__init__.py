"""Signed one-file model bundles, so an offline box can take models from a USB stick and know
who built them.

`manifest` (format and rules), `signing` (Ed25519 keys), `archive` (write and verify-unpack)
and `installed` (re-check an imported version at load) are imported directly; this package
imports nothing, so `import inferencehub.bundles` costs nothing. The format is in
docs/bundles.md.
"""
