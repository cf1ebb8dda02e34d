"""A pipeline version: steps run one after another in the worker, on one request's tensors.

It stands where an OnnxModel stands (the registry, the scheduler, the golden gate and the hop
see the same surface), so a pipeline is served like any model: name, versions, routing,
metrics, /v2 metadata of its outer inputs and outputs. Model steps run the current sessions of
the repository's models directly (no queue, no extra hop); built-in operations are numpy and
Pillow (worker/pipeline_ops.py). Everything that can be checked before traffic is checked when
the version loads, so a wiring mistake is a FAILED version with the reason, not a 500 later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from inferencehub.errors import (
    ConfigError,
    HubError,
    InternalError,
    InvalidRequestError,
    first_line,
)
from inferencehub.protocol.kserve_codec import PIPELINE_PROVIDER
from inferencehub.protocol.tensors import array_from_buffer
from inferencehub.protocol.validation import SignatureCheck
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.worker.onnx_model import BatchRun, ItemResult, OnnxModel
from inferencehub.worker.pipeline_config import PipelineConfig, PipelineStep
from inferencehub.worker.pipeline_ops import OpContext, Run, built_in
from inferencehub.worker.repository import ModelConfig
from inferencehub.worker.statistics import VersionStatistics

logger = logging.getLogger(__name__)

PROVIDER = PIPELINE_PROVIDER  # what /v1 shows as its provider; KServe says "ensemble"
# The model a step names, as it serves now (name, version or label): raises HubError.
StepModels = Callable[[str, str], OnnxModel]
Tensors = dict[str, np.ndarray]


@dataclass(frozen=True, slots=True)
class _Step:
    label: str
    # (tensors so far, instance) -> what it writes, and the rows a model step ran (0: an op)
    run: Callable[[Tensors, int], tuple[Tensors, int]]


class PipelineModel:
    """A pipeline version ready to run; `run` is blocking (call it from the pool)."""

    def __init__(
        self,
        name: str,
        version: str,
        folder: Path,
        config: ModelConfig,
        step_models: StepModels,
        max_image_pixels: int,
    ) -> None:
        """Check the wiring against the steps' models and build the operations.

        Raises:
            ConfigError: a step names a missing model or op, reads a tensor no earlier step
                writes, has bad params, or an output is written by no step.
        """
        assert config.pipeline is not None
        pipeline: PipelineConfig = config.pipeline
        self.name = name
        self.provider = PROVIDER
        self.stats = VersionStatistics()
        self._step_models = step_models
        self.inputs = [_spec(t.name, t.datatype, t.shape) for t in pipeline.inputs]
        self.outputs = [_spec(t.name, t.datatype, t.shape) for t in pipeline.outputs]
        context = OpContext(folder=folder, max_image_pixels=max_image_pixels)
        known = {t.name for t in pipeline.inputs}
        self._steps: list[_Step] = []
        for index, step in enumerate(pipeline.steps, 1):
            where = f"pipeline step {index} ({step.label})"
            missing = sorted(set(step.inputs.values()) - known)
            if missing:
                raise ConfigError(
                    f"{where} reads {', '.join(missing)}, which no earlier step writes "
                    f"(written so far: {', '.join(sorted(known))})"
                )
            built, writes = (
                self._op_step(step, context, where)
                if step.op is not None
                else self._model_step(step, where)
            )
            self._steps.append(built)
            known |= writes
        unwritten = sorted(t.name for t in pipeline.outputs if t.name not in known)
        if unwritten:
            raise ConfigError(f"pipeline output(s) {', '.join(unwritten)} are written by no step")
        self.info = pb.ModelVersion(
            version=version,
            state=pb.ModelVersion.READY,
            provider=PROVIDER,
            inputs=self.inputs,
            outputs=self.outputs,
            max_batch_size=0,
            instances=config.instances,
            max_queue_size=config.max_queue_size,
        )
        if pipeline.image_input is not None:
            self.info.image.input = pipeline.image_input
        self.signature = SignatureCheck(self.info)

    def _op_step(
        self, step: PipelineStep, context: OpContext, where: str
    ) -> tuple[_Step, set[str]]:
        assert step.op is not None
        try:
            op = built_in(step.op)
            run = op.build(step.params, context)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc.message}") from None
        reads = set(step.inputs)
        if not op.variadic and reads != set(op.inputs):
            raise ConfigError(
                f"{where}: op {step.op} takes inputs {', '.join(op.inputs)}; the step gives "
                f"{', '.join(sorted(reads)) or 'none'}"
            )
        if not set(op.inputs) <= reads:
            raise ConfigError(f"{where}: op {step.op} needs inputs {', '.join(op.inputs)}")
        produced = set(op.outputs) | (reads - set(op.inputs) if op.variadic else set())
        renames = _renames(step, produced, where)
        return _Step(step.label, _run_op(run, step.inputs, renames)), set(renames.values())

    def _model_step(self, step: PipelineStep, where: str) -> tuple[_Step, set[str]]:
        assert step.model is not None
        try:
            model = self._step_models(step.model, step.version)
        except HubError as exc:
            raise ConfigError(f"{where}: {exc.message}") from None
        wanted = {s.name for s in model.inputs}
        if set(step.inputs) != wanted:
            raise ConfigError(
                f"{where}: model {step.model} takes inputs {', '.join(sorted(wanted))}; the "
                f"step gives {', '.join(sorted(step.inputs)) or 'none'}"
            )
        renames = _renames(step, {s.name for s in model.outputs}, where)
        name, version = step.model, step.version
        ranks = {s.name: len(s.shape) for s in model.outputs}

        def run(tensors: Tensors, instance: int) -> Tensors:
            current = self._step_models(name, version)  # a reload since: its new sessions
            feeds = {inp: tensors[src] for inp, src in step.inputs.items()}
            rows = min((int(a.shape[0]) for a in feeds.values() if a.ndim), default=1)
            if rows == 0:  # nothing to run on (no text found): empty outputs of the same rank
                empty = {
                    dst: np.zeros((0,) * ranks[src], np.float32) for src, dst in renames.items()
                }
                return empty, 0
            try:
                results = current.run_feeds(instance % max(1, current.info.instances), feeds)
            except (
                ort.capi.onnxruntime_pybind11_state.InvalidArgument,
                ort.capi.onnxruntime_pybind11_state.Fail,
            ) as exc:
                raise InvalidRequestError(
                    f"{where}: model {name} rejected its inputs: {first_line(exc)}"
                ) from None
            return {dst: np.asarray(results[src]) for src, dst in renames.items()}, rows

        return _Step(step.label, run), set(renames.values())

    @property
    def batching(self) -> bool:
        return False

    @property
    def decoding_is_heavy(self) -> bool:
        return False  # images are decoded by a step, on the pool

    def decode_inputs(
        self, request: pb.PredictRequest, payloads: Sequence[bytes | memoryview] | None = None
    ) -> Tensors:
        """The request's tensors as arrays; BYTES stay bytes (an encoded image is not text)."""
        buffers = payloads if payloads is not None else [t.contents for t in request.inputs]
        return {
            tensor.name: array_from_buffer(tensor.name, tensor.datatype, tensor.shape, buffer)
            for tensor, buffer in zip(request.inputs, buffers, strict=True)
        }

    def run(self, instance: int, feeds: list[Tensors], outputs: list[str]) -> BatchRun:
        """Each request through every step (requests are never merged: a pipeline's tensors
        change shape from step to step)."""
        merged_ns = time.perf_counter_ns()
        wanted = outputs or [s.name for s in self.outputs]
        items = []
        for request_feeds in feeds:
            tensors, steps = self._through(request_feeds, instance)
            items.append(
                ItemResult(
                    outputs=[(name, tensors[name]) for name in wanted],
                    classifications=[],
                    steps=steps,
                )
            )
        computed_ns = time.perf_counter_ns()
        return BatchRun(items, merged_ns, computed_ns, computed_ns)

    def run_feeds(self, instance: int, feeds: Tensors) -> Tensors:
        """Every output for ready-made feeds (the golden gate's and warm-up's entry)."""
        tensors, _ = self._through(feeds, instance)
        return {s.name: tensors[s.name] for s in self.outputs}

    def _through(self, feeds: Tensors, instance: int) -> tuple[Tensors, tuple[pb.StepTiming, ...]]:
        tensors = dict(feeds)
        timings = []
        for step in self._steps:
            started = time.perf_counter_ns()
            try:
                written, rows = step.run(tensors, instance)
            except HubError:
                raise
            except Exception:
                logger.exception("pipeline %s step %s failed", self.name, step.label)
                raise InternalError(
                    f"pipeline step {step.label} failed; see the worker log"
                ) from None
            tensors.update(written)
            timings.append(
                pb.StepTiming(
                    name=step.label, ms=(time.perf_counter_ns() - started) / 1e6, items=rows
                )
            )
        return tensors, tuple(timings)

    def top_classes(self, name: str, values: np.ndarray, k: int) -> np.ndarray:
        raise InvalidRequestError(
            f"pipeline '{self.name}' answers no classification; ask for its outputs"
        )


def _spec(name: str, datatype: str, shape: Sequence[int]) -> pb.TensorSpec:
    return pb.TensorSpec(name=name, datatype=datatype, shape=list(shape))


def _renames(step: PipelineStep, produced: set[str], where: str) -> dict[str, str]:
    """The step's output name -> the pipeline tensor it becomes."""
    unknown = sorted(set(step.outputs) - produced)
    if unknown:
        raise ConfigError(
            f"{where} maps outputs {', '.join(unknown)} it does not have (it has "
            f"{', '.join(sorted(produced))})"
        )
    return {name: step.outputs.get(name, name) for name in sorted(produced)}


def _run_op(
    run: Run, reads: dict[str, str], renames: dict[str, str]
) -> Callable[[Tensors, int], tuple[Tensors, int]]:
    def step(tensors: Tensors, instance: int) -> tuple[Tensors, int]:
        written = run({inp: tensors[src] for inp, src in reads.items()})
        return {renames[name]: array for name, array in written.items() if name in renames}, 0

    return step
