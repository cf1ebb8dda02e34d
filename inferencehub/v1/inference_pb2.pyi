from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Tensor(_message.Message):
    __slots__ = ("name", "datatype", "shape", "contents", "shared_memory")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATATYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    CONTENTS_FIELD_NUMBER: _ClassVar[int]
    SHARED_MEMORY_FIELD_NUMBER: _ClassVar[int]
    name: str
    datatype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    contents: bytes
    shared_memory: SharedMemorySpan
    def __init__(self, name: _Optional[str] = ..., datatype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., contents: _Optional[bytes] = ..., shared_memory: _Optional[_Union[SharedMemorySpan, _Mapping]] = ...) -> None: ...

class SharedMemorySpan(_message.Message):
    __slots__ = ("region", "key", "offset", "byte_size", "device", "inode", "region_offset")
    REGION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    BYTE_SIZE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    INODE_FIELD_NUMBER: _ClassVar[int]
    REGION_OFFSET_FIELD_NUMBER: _ClassVar[int]
    region: str
    key: str
    offset: int
    byte_size: int
    device: int
    inode: int
    region_offset: int
    def __init__(self, region: _Optional[str] = ..., key: _Optional[str] = ..., offset: _Optional[int] = ..., byte_size: _Optional[int] = ..., device: _Optional[int] = ..., inode: _Optional[int] = ..., region_offset: _Optional[int] = ...) -> None: ...

class OutputOptions(_message.Message):
    __slots__ = ("class_count", "shared_memory")
    CLASS_COUNT_FIELD_NUMBER: _ClassVar[int]
    SHARED_MEMORY_FIELD_NUMBER: _ClassVar[int]
    class_count: int
    shared_memory: SharedMemorySpan
    def __init__(self, class_count: _Optional[int] = ..., shared_memory: _Optional[_Union[SharedMemorySpan, _Mapping]] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("model_name", "version", "inputs", "outputs", "parameters", "request_id", "timeout_s", "output_options")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class OutputOptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: OutputOptions
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[OutputOptions, _Mapping]] = ...) -> None: ...
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    version: str
    inputs: _containers.RepeatedCompositeFieldContainer[Tensor]
    outputs: _containers.RepeatedScalarFieldContainer[str]
    parameters: _containers.ScalarMap[str, str]
    request_id: str
    timeout_s: float
    output_options: _containers.MessageMap[str, OutputOptions]
    def __init__(self, model_name: _Optional[str] = ..., version: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[Tensor, _Mapping]]] = ..., outputs: _Optional[_Iterable[str]] = ..., parameters: _Optional[_Mapping[str, str]] = ..., request_id: _Optional[str] = ..., timeout_s: _Optional[float] = ..., output_options: _Optional[_Mapping[str, OutputOptions]] = ...) -> None: ...

class PredictManyRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[PredictRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[PredictRequest, _Mapping]]] = ...) -> None: ...

class PredictError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class PredictResult(_message.Message):
    __slots__ = ("response", "error")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    response: PredictResponse
    error: PredictError
    def __init__(self, response: _Optional[_Union[PredictResponse, _Mapping]] = ..., error: _Optional[_Union[PredictError, _Mapping]] = ...) -> None: ...

class PredictManyResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[PredictResult]
    def __init__(self, results: _Optional[_Iterable[_Union[PredictResult, _Mapping]]] = ...) -> None: ...

class ClassScore(_message.Message):
    __slots__ = ("index", "label", "score")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    index: int
    label: str
    score: float
    def __init__(self, index: _Optional[int] = ..., label: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class Classification(_message.Message):
    __slots__ = ("classes",)
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    classes: _containers.RepeatedCompositeFieldContainer[ClassScore]
    def __init__(self, classes: _Optional[_Iterable[_Union[ClassScore, _Mapping]]] = ...) -> None: ...

class Timing(_message.Message):
    __slots__ = ("preprocess_ms", "inference_ms", "postprocess_ms", "queue_ms", "batch_size", "steps")
    PREPROCESS_MS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_MS_FIELD_NUMBER: _ClassVar[int]
    POSTPROCESS_MS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_MS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float
    queue_ms: float
    batch_size: int
    steps: _containers.RepeatedCompositeFieldContainer[StepTiming]
    def __init__(self, preprocess_ms: _Optional[float] = ..., inference_ms: _Optional[float] = ..., postprocess_ms: _Optional[float] = ..., queue_ms: _Optional[float] = ..., batch_size: _Optional[int] = ..., steps: _Optional[_Iterable[_Union[StepTiming, _Mapping]]] = ...) -> None: ...

class StepTiming(_message.Message):
    __slots__ = ("name", "ms", "items")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    ms: float
    items: int
    def __init__(self, name: _Optional[str] = ..., ms: _Optional[float] = ..., items: _Optional[int] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("model_name", "version", "outputs", "classifications", "request_id", "timing")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TIMING_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    version: str
    outputs: _containers.RepeatedCompositeFieldContainer[Tensor]
    classifications: _containers.RepeatedCompositeFieldContainer[Classification]
    request_id: str
    timing: Timing
    def __init__(self, model_name: _Optional[str] = ..., version: _Optional[str] = ..., outputs: _Optional[_Iterable[_Union[Tensor, _Mapping]]] = ..., classifications: _Optional[_Iterable[_Union[Classification, _Mapping]]] = ..., request_id: _Optional[str] = ..., timing: _Optional[_Union[Timing, _Mapping]] = ...) -> None: ...

class TensorSpec(_message.Message):
    __slots__ = ("name", "datatype", "shape")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATATYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    datatype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, name: _Optional[str] = ..., datatype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ...) -> None: ...

class ImageInput(_message.Message):
    __slots__ = ("input", "height", "width", "layout", "color")
    INPUT_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    input: str
    height: int
    width: int
    layout: str
    color: str
    def __init__(self, input: _Optional[str] = ..., height: _Optional[int] = ..., width: _Optional[int] = ..., layout: _Optional[str] = ..., color: _Optional[str] = ...) -> None: ...

class ModelVersion(_message.Message):
    __slots__ = ("version", "state", "error", "provider", "inputs", "outputs", "image", "top_k", "max_batch_size", "instances", "dynamic_batching", "max_queue_size", "provider_notes", "provider_timings_ms", "tuning")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[ModelVersion.State]
        READY: _ClassVar[ModelVersion.State]
        FAILED: _ClassVar[ModelVersion.State]
        UNLOADED: _ClassVar[ModelVersion.State]
    STATE_UNSPECIFIED: ModelVersion.State
    READY: ModelVersion.State
    FAILED: ModelVersion.State
    UNLOADED: ModelVersion.State
    class ProviderTimingsMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    DYNAMIC_BATCHING_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_NOTES_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_TIMINGS_MS_FIELD_NUMBER: _ClassVar[int]
    TUNING_FIELD_NUMBER: _ClassVar[int]
    version: str
    state: ModelVersion.State
    error: str
    provider: str
    inputs: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    outputs: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    image: ImageInput
    top_k: int
    max_batch_size: int
    instances: int
    dynamic_batching: DynamicBatching
    max_queue_size: int
    provider_notes: _containers.RepeatedScalarFieldContainer[str]
    provider_timings_ms: _containers.ScalarMap[str, float]
    tuning: Tuning
    def __init__(self, version: _Optional[str] = ..., state: _Optional[_Union[ModelVersion.State, str]] = ..., error: _Optional[str] = ..., provider: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., image: _Optional[_Union[ImageInput, _Mapping]] = ..., top_k: _Optional[int] = ..., max_batch_size: _Optional[int] = ..., instances: _Optional[int] = ..., dynamic_batching: _Optional[_Union[DynamicBatching, _Mapping]] = ..., max_queue_size: _Optional[int] = ..., provider_notes: _Optional[_Iterable[str]] = ..., provider_timings_ms: _Optional[_Mapping[str, float]] = ..., tuning: _Optional[_Union[Tuning, _Mapping]] = ...) -> None: ...

class Tuning(_message.Message):
    __slots__ = ("source", "reason", "intra_op_threads", "batch_cap", "trials", "spent_ms", "session_mb")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    INTRA_OP_THREADS_FIELD_NUMBER: _ClassVar[int]
    BATCH_CAP_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    SPENT_MS_FIELD_NUMBER: _ClassVar[int]
    SESSION_MB_FIELD_NUMBER: _ClassVar[int]
    source: str
    reason: str
    intra_op_threads: int
    batch_cap: int
    trials: _containers.RepeatedCompositeFieldContainer[TuningTrial]
    spent_ms: float
    session_mb: float
    def __init__(self, source: _Optional[str] = ..., reason: _Optional[str] = ..., intra_op_threads: _Optional[int] = ..., batch_cap: _Optional[int] = ..., trials: _Optional[_Iterable[_Union[TuningTrial, _Mapping]]] = ..., spent_ms: _Optional[float] = ..., session_mb: _Optional[float] = ...) -> None: ...

class TuningTrial(_message.Message):
    __slots__ = ("instances", "intra_op_threads", "batch", "items_per_s")
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    INTRA_OP_THREADS_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    ITEMS_PER_S_FIELD_NUMBER: _ClassVar[int]
    instances: int
    intra_op_threads: int
    batch: int
    items_per_s: float
    def __init__(self, instances: _Optional[int] = ..., intra_op_threads: _Optional[int] = ..., batch: _Optional[int] = ..., items_per_s: _Optional[float] = ...) -> None: ...

class DynamicBatching(_message.Message):
    __slots__ = ("max_queue_delay_us", "preferred_batch_sizes")
    MAX_QUEUE_DELAY_US_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_BATCH_SIZES_FIELD_NUMBER: _ClassVar[int]
    max_queue_delay_us: int
    preferred_batch_sizes: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, max_queue_delay_us: _Optional[int] = ..., preferred_batch_sizes: _Optional[_Iterable[int]] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "default_version", "versions", "routing")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    name: str
    default_version: str
    versions: _containers.RepeatedCompositeFieldContainer[ModelVersion]
    routing: RoutingPolicy
    def __init__(self, name: _Optional[str] = ..., default_version: _Optional[str] = ..., versions: _Optional[_Iterable[_Union[ModelVersion, _Mapping]]] = ..., routing: _Optional[_Union[RoutingPolicy, _Mapping]] = ...) -> None: ...

class RoutingPolicy(_message.Message):
    __slots__ = ("labels", "weights", "sticky", "shadow", "canary")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class WeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    LABELS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    STICKY_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.ScalarMap[str, str]
    weights: _containers.ScalarMap[str, float]
    sticky: bool
    shadow: Shadow
    canary: Canary
    def __init__(self, labels: _Optional[_Mapping[str, str]] = ..., weights: _Optional[_Mapping[str, float]] = ..., sticky: bool = ..., shadow: _Optional[_Union[Shadow, _Mapping]] = ..., canary: _Optional[_Union[Canary, _Mapping]] = ...) -> None: ...

class Shadow(_message.Message):
    __slots__ = ("version", "fraction")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    version: str
    fraction: float
    def __init__(self, version: _Optional[str] = ..., fraction: _Optional[float] = ...) -> None: ...

class Canary(_message.Message):
    __slots__ = ("version", "baseline", "ramp", "every_s", "max_error_rate", "max_p99_ratio", "min_requests", "state", "step", "reason", "started_ms", "updated_ms")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Canary.State]
        RUNNING: _ClassVar[Canary.State]
        PROMOTED: _ClassVar[Canary.State]
        ROLLED_BACK: _ClassVar[Canary.State]
    STATE_UNSPECIFIED: Canary.State
    RUNNING: Canary.State
    PROMOTED: Canary.State
    ROLLED_BACK: Canary.State
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    RAMP_FIELD_NUMBER: _ClassVar[int]
    EVERY_S_FIELD_NUMBER: _ClassVar[int]
    MAX_ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_P99_RATIO_FIELD_NUMBER: _ClassVar[int]
    MIN_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STARTED_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_MS_FIELD_NUMBER: _ClassVar[int]
    version: str
    baseline: str
    ramp: _containers.RepeatedScalarFieldContainer[float]
    every_s: float
    max_error_rate: float
    max_p99_ratio: float
    min_requests: int
    state: Canary.State
    step: int
    reason: str
    started_ms: int
    updated_ms: int
    def __init__(self, version: _Optional[str] = ..., baseline: _Optional[str] = ..., ramp: _Optional[_Iterable[float]] = ..., every_s: _Optional[float] = ..., max_error_rate: _Optional[float] = ..., max_p99_ratio: _Optional[float] = ..., min_requests: _Optional[int] = ..., state: _Optional[_Union[Canary.State, str]] = ..., step: _Optional[int] = ..., reason: _Optional[str] = ..., started_ms: _Optional[int] = ..., updated_ms: _Optional[int] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServerInfoResponse(_message.Message):
    __slots__ = ("name", "version", "live", "ready")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LIVE_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    live: bool
    ready: bool
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., live: bool = ..., ready: bool = ...) -> None: ...

class ModelStatisticsRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class Duration(_message.Message):
    __slots__ = ("count", "ns")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    NS_FIELD_NUMBER: _ClassVar[int]
    count: int
    ns: int
    def __init__(self, count: _Optional[int] = ..., ns: _Optional[int] = ...) -> None: ...

class BatchStatistics(_message.Message):
    __slots__ = ("batch_size", "compute_input", "compute_infer", "compute_output")
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_INPUT_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_INFER_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    batch_size: int
    compute_input: Duration
    compute_infer: Duration
    compute_output: Duration
    def __init__(self, batch_size: _Optional[int] = ..., compute_input: _Optional[_Union[Duration, _Mapping]] = ..., compute_infer: _Optional[_Union[Duration, _Mapping]] = ..., compute_output: _Optional[_Union[Duration, _Mapping]] = ...) -> None: ...

class VersionStatistics(_message.Message):
    __slots__ = ("name", "version", "last_inference_ms", "inference_count", "execution_count", "success", "fail", "queue", "compute_input", "compute_infer", "compute_output", "batches", "queue_depth")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LAST_INFERENCE_MS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_COUNT_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_COUNT_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    FAIL_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_INPUT_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_INFER_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    last_inference_ms: int
    inference_count: int
    execution_count: int
    success: Duration
    fail: Duration
    queue: Duration
    compute_input: Duration
    compute_infer: Duration
    compute_output: Duration
    batches: _containers.RepeatedCompositeFieldContainer[BatchStatistics]
    queue_depth: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., last_inference_ms: _Optional[int] = ..., inference_count: _Optional[int] = ..., execution_count: _Optional[int] = ..., success: _Optional[_Union[Duration, _Mapping]] = ..., fail: _Optional[_Union[Duration, _Mapping]] = ..., queue: _Optional[_Union[Duration, _Mapping]] = ..., compute_input: _Optional[_Union[Duration, _Mapping]] = ..., compute_infer: _Optional[_Union[Duration, _Mapping]] = ..., compute_output: _Optional[_Union[Duration, _Mapping]] = ..., batches: _Optional[_Iterable[_Union[BatchStatistics, _Mapping]]] = ..., queue_depth: _Optional[int] = ...) -> None: ...

class ModelStatisticsResponse(_message.Message):
    __slots__ = ("versions", "hop")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    HOP_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[VersionStatistics]
    hop: HopStatistics
    def __init__(self, versions: _Optional[_Iterable[_Union[VersionStatistics, _Mapping]]] = ..., hop: _Optional[_Union[HopStatistics, _Mapping]] = ...) -> None: ...

class HopStatistics(_message.Message):
    __slots__ = ("sessions", "arenas_mapped", "requests_held", "slots_held")
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    ARENAS_MAPPED_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_HELD_FIELD_NUMBER: _ClassVar[int]
    SLOTS_HELD_FIELD_NUMBER: _ClassVar[int]
    sessions: int
    arenas_mapped: int
    requests_held: int
    slots_held: int
    def __init__(self, sessions: _Optional[int] = ..., arenas_mapped: _Optional[int] = ..., requests_held: _Optional[int] = ..., slots_held: _Optional[int] = ...) -> None: ...

class LoadModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class UnloadModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class SetRoutingRequest(_message.Message):
    __slots__ = ("name", "routing", "reset", "if_canary_updated_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    IF_CANARY_UPDATED_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    routing: RoutingPolicy
    reset: bool
    if_canary_updated_ms: int
    def __init__(self, name: _Optional[str] = ..., routing: _Optional[_Union[RoutingPolicy, _Mapping]] = ..., reset: bool = ..., if_canary_updated_ms: _Optional[int] = ...) -> None: ...

class TrafficRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class Percentiles(_message.Message):
    __slots__ = ("p50_ms", "p95_ms", "p99_ms")
    P50_MS_FIELD_NUMBER: _ClassVar[int]
    P95_MS_FIELD_NUMBER: _ClassVar[int]
    P99_MS_FIELD_NUMBER: _ClassVar[int]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    def __init__(self, p50_ms: _Optional[float] = ..., p95_ms: _Optional[float] = ..., p99_ms: _Optional[float] = ...) -> None: ...

class VersionTraffic(_message.Message):
    __slots__ = ("name", "version", "requests", "errors", "latency", "shadow_requests", "shadow_errors", "shadow_dropped", "shadow_mismatches", "shadow_latency", "requests_per_s", "recent_error_rate", "recent_latency", "avg_batch_size", "queue_depth", "requests_history")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    SHADOW_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    SHADOW_ERRORS_FIELD_NUMBER: _ClassVar[int]
    SHADOW_DROPPED_FIELD_NUMBER: _ClassVar[int]
    SHADOW_MISMATCHES_FIELD_NUMBER: _ClassVar[int]
    SHADOW_LATENCY_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_S_FIELD_NUMBER: _ClassVar[int]
    RECENT_ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    RECENT_LATENCY_FIELD_NUMBER: _ClassVar[int]
    AVG_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_HISTORY_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    requests: int
    errors: int
    latency: Percentiles
    shadow_requests: int
    shadow_errors: int
    shadow_dropped: int
    shadow_mismatches: int
    shadow_latency: Percentiles
    requests_per_s: float
    recent_error_rate: float
    recent_latency: Percentiles
    avg_batch_size: float
    queue_depth: int
    requests_history: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., requests: _Optional[int] = ..., errors: _Optional[int] = ..., latency: _Optional[_Union[Percentiles, _Mapping]] = ..., shadow_requests: _Optional[int] = ..., shadow_errors: _Optional[int] = ..., shadow_dropped: _Optional[int] = ..., shadow_mismatches: _Optional[int] = ..., shadow_latency: _Optional[_Union[Percentiles, _Mapping]] = ..., requests_per_s: _Optional[float] = ..., recent_error_rate: _Optional[float] = ..., recent_latency: _Optional[_Union[Percentiles, _Mapping]] = ..., avg_batch_size: _Optional[float] = ..., queue_depth: _Optional[int] = ..., requests_history: _Optional[_Iterable[int]] = ...) -> None: ...

class TrafficResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[VersionTraffic]
    def __init__(self, versions: _Optional[_Iterable[_Union[VersionTraffic, _Mapping]]] = ...) -> None: ...

class ImportChunk(_message.Message):
    __slots__ = ("replace", "onnx_model", "data")
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    ONNX_MODEL_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    replace: bool
    onnx_model: str
    data: bytes
    def __init__(self, replace: bool = ..., onnx_model: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class ImportReply(_message.Message):
    __slots__ = ("model", "versions", "signer")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    SIGNER_FIELD_NUMBER: _ClassVar[int]
    model: ModelInfo
    versions: _containers.RepeatedScalarFieldContainer[str]
    signer: str
    def __init__(self, model: _Optional[_Union[ModelInfo, _Mapping]] = ..., versions: _Optional[_Iterable[str]] = ..., signer: _Optional[str] = ...) -> None: ...
