from inferencehub.v1 import inference_pb2 as _inference_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Span(_message.Message):
    __slots__ = ("offset", "length")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    offset: int
    length: int
    def __init__(self, offset: _Optional[int] = ..., length: _Optional[int] = ...) -> None: ...

class ArenaOffer(_message.Message):
    __slots__ = ("path", "size", "arena_id")
    PATH_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ARENA_ID_FIELD_NUMBER: _ClassVar[int]
    path: str
    size: int
    arena_id: int
    def __init__(self, path: _Optional[str] = ..., size: _Optional[int] = ..., arena_id: _Optional[int] = ...) -> None: ...

class HopHello(_message.Message):
    __slots__ = ("arena",)
    ARENA_FIELD_NUMBER: _ClassVar[int]
    arena: ArenaOffer
    def __init__(self, arena: _Optional[_Union[ArenaOffer, _Mapping]] = ...) -> None: ...

class HopRequest(_message.Message):
    __slots__ = ("tag", "request", "slot", "generation", "inputs", "output_space")
    TAG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SPACE_FIELD_NUMBER: _ClassVar[int]
    tag: int
    request: _inference_pb2.PredictRequest
    slot: int
    generation: int
    inputs: _containers.RepeatedCompositeFieldContainer[Span]
    output_space: Span
    def __init__(self, tag: _Optional[int] = ..., request: _Optional[_Union[_inference_pb2.PredictRequest, _Mapping]] = ..., slot: _Optional[int] = ..., generation: _Optional[int] = ..., inputs: _Optional[_Iterable[_Union[Span, _Mapping]]] = ..., output_space: _Optional[_Union[Span, _Mapping]] = ...) -> None: ...

class HopRequests(_message.Message):
    __slots__ = ("hello", "requests")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    hello: HopHello
    requests: _containers.RepeatedCompositeFieldContainer[HopRequest]
    def __init__(self, hello: _Optional[_Union[HopHello, _Mapping]] = ..., requests: _Optional[_Iterable[_Union[HopRequest, _Mapping]]] = ...) -> None: ...

class HopHelloReply(_message.Message):
    __slots__ = ("arena_mapped", "error", "pid")
    ARENA_MAPPED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    arena_mapped: bool
    error: str
    pid: int
    def __init__(self, arena_mapped: bool = ..., error: _Optional[str] = ..., pid: _Optional[int] = ...) -> None: ...

class HopResult(_message.Message):
    __slots__ = ("tag", "response", "error", "outputs")
    TAG_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    tag: int
    response: _inference_pb2.PredictResponse
    error: _inference_pb2.PredictError
    outputs: _containers.RepeatedCompositeFieldContainer[Span]
    def __init__(self, tag: _Optional[int] = ..., response: _Optional[_Union[_inference_pb2.PredictResponse, _Mapping]] = ..., error: _Optional[_Union[_inference_pb2.PredictError, _Mapping]] = ..., outputs: _Optional[_Iterable[_Union[Span, _Mapping]]] = ...) -> None: ...

class HopResults(_message.Message):
    __slots__ = ("hello", "results")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    hello: HopHelloReply
    results: _containers.RepeatedCompositeFieldContainer[HopResult]
    def __init__(self, hello: _Optional[_Union[HopHelloReply, _Mapping]] = ..., results: _Optional[_Iterable[_Union[HopResult, _Mapping]]] = ...) -> None: ...
