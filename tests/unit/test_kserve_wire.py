"""Our KServe v2 proto is wire-compatible with Triton's, field by field (checked with tritonclient).

tritonclient registers the same `inference.*` names, so its descriptors are read in a
subprocess and compared here with ours.
"""

from __future__ import annotations

import json
import subprocess
import sys

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FileDescriptor

from inferencehub.kserve import grpc_predict_v2_pb2 as ours

_DUMP = r"""
import json, sys
from tritonclient.grpc import service_pb2 as s, model_config_pb2 as mc
out = {"messages": {}, "enums": {}, "methods": {}}
def walk(d):
    out["messages"][d.full_name] = {f.name: [f.number, f.type, f.is_repeated] for f in d.fields}
    for n in d.nested_types:
        walk(n)
    for e in d.enum_types:
        out["enums"][e.full_name] = {v.name: v.number for v in e.values}
for fd in (s.DESCRIPTOR, mc.DESCRIPTOR):
    for d in fd.message_types_by_name.values():
        walk(d)
    for e in fd.enum_types_by_name.values():
        out["enums"][e.full_name] = {v.name: v.number for v in e.values}
for m in s.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods:
    out["methods"][m.name] = [m.input_type.full_name, m.output_type.full_name]
json.dump(out, sys.stdout)
"""


def _ours(fd: FileDescriptor) -> dict:
    out: dict = {"messages": {}, "enums": {}, "methods": {}}

    def walk(d: Descriptor) -> None:
        out["messages"][d.full_name] = {f.name: [f.number, f.type, f.is_repeated] for f in d.fields}
        for nested in d.nested_types:
            walk(nested)
        for enum in d.enum_types:
            add_enum(enum)

    def add_enum(e: EnumDescriptor) -> None:
        out["enums"][e.full_name] = {v.name: v.number for v in e.values}

    for d in fd.message_types_by_name.values():
        walk(d)
    for e in fd.enum_types_by_name.values():
        add_enum(e)
    for m in fd.services_by_name["GRPCInferenceService"].methods:
        out["methods"][m.name] = [m.input_type.full_name, m.output_type.full_name]
    return out


def test_every_declared_field_matches_triton() -> None:
    dumped = subprocess.run(
        [sys.executable, "-c", _DUMP], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    triton = json.loads(dumped)
    mine = _ours(ours.DESCRIPTOR)
    assert len(mine["messages"]) >= 30 and len(mine["methods"]) == 17  # + 6 shared-memory RPCs
    for name, methods in mine["methods"].items():
        assert triton["methods"][name] == methods, name
    for message, fields in mine["messages"].items():
        assert message in triton["messages"], f"{message} is not a Triton message"
        for field, spec in fields.items():
            assert triton["messages"][message].get(field) == spec, f"{message}.{field}"
    for enum, values in mine["enums"].items():
        for value, number in values.items():
            assert triton["enums"][enum][value] == number, f"{enum}.{value}"
