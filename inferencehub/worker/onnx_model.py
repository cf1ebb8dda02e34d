"""One loaded model version: its ONNX Runtime sessions plus pre/post-processing."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from inferencehub.errors import ConfigError, InternalError, InvalidRequestError, first_line
from inferencehub.protocol.datatypes import BYTES
from inferencehub.protocol.tensors import array_from_buffer
from inferencehub.protocol.validation import SignatureCheck
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.worker.memory import (
    SHRINK_MIN_INPUT_BYTES,
    release_free_memory,
    shrinking_run_options,
)
from inferencehub.worker.preprocess import images_to_batch
from inferencehub.worker.providers import ProviderOptions, ProviderPolicy, Selection, select
from inferencehub.worker.repository import ModelConfig, PostprocessConfig, PreprocessConfig
from inferencehub.worker.signature import batchable, session_feeds, tensor_specs
from inferencehub.worker.statistics import VersionStatistics
from inferencehub.worker.tuning import Layout

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_SIZE = 64


def session_options(intra_op_threads: int) -> ort.SessionOptions:
    """How every CPU session is opened, the ones tuning measures included."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # ORT's warnings go to its own stderr otherwise
    # NOTE: ORT's pool threads spin between runs by default, burning the cores the gateway
    # and the other models need; on a small box that costs more than the wake-up latency.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


@dataclass(frozen=True, slots=True)
class ItemResult:
    """One request's share of a batch run: outputs as ONNX Runtime made them (numpy), so the
    caller writes them where they go (a message, or the hop's arena) with one copy."""

    outputs: list[tuple[str, np.ndarray]]
    classifications: list[pb.Classification]
    steps: tuple[pb.StepTiming, ...] = ()  # a pipeline's, step by step


@dataclass(frozen=True, slots=True)
class BatchRun:
    """What a batch run returns: per-item results and when each phase ended."""

    items: list[ItemResult]
    merged_ns: int
    computed_ns: int
    done_ns: int


class OnnxModel:
    """A model version ready to run. Decoding and `run` are blocking: call them from the pool."""

    def __init__(
        self,
        name: str,
        version: str,
        path: Path,
        config: ModelConfig,
        labels: list[str] | None,
        *,
        layout: Layout,
        max_image_pixels: int,
        provider: str = "auto",
        provider_policy: ProviderPolicy = "fallback",
        provider_options: ProviderOptions | None = None,
    ) -> None:
        """`layout`: instances, threads and batch cap (measured by tuning.py, or the
        defaults). Opens the sessions (probing GPU providers first), so it blocks.

        Raises:
            ConfigError: no provider can open the model, or model.toml does not fit it.
        """
        selection = select(
            path,
            session_options(layout.threads),
            layout.instances,
            config.provider or provider,
            config.provider_policy or provider_policy,
            provider_options,
            synthetic=session_feeds,
        )
        self.name = name
        self.provider = selection.provider
        self.stats = VersionStatistics()
        self._sessions = selection.sessions
        self._shrinking = shrinking_run_options()
        self._config = config
        self._labels = labels
        self._max_image_pixels = max_image_pixels
        self.inputs = tensor_specs(self._sessions[0].get_inputs())
        self.outputs = tensor_specs(self._sessions[0].get_outputs())
        self.info = self._describe(version, selection, layout)
        self._image_input = ""
        self._image_size: tuple[int, int] | None = None
        if config.preprocess is not None:
            self._attach_image_input(config.preprocess)
        self._scores_output = ""
        if config.postprocess is not None:
            self._attach_scores_output(config.postprocess)
        self.signature = SignatureCheck(self.info)

    def _describe(self, version: str, selection: Selection, layout: Layout) -> pb.ModelVersion:
        """The version as the gateway sees it: signature, provider, batching and tuning."""
        config = self._config
        info = pb.ModelVersion(
            version=version,
            state=pb.ModelVersion.READY,
            provider=selection.provider,
            provider_notes=selection.notes,
            provider_timings_ms=selection.timings_ms,
            inputs=self.inputs,
            outputs=self.outputs,
            max_batch_size=self._max_batch_size(config),
            instances=layout.instances,
            max_queue_size=config.max_queue_size,
            tuning=layout.to_proto(),
        )
        if info.max_batch_size > 0 and config.batching.enabled:
            info.dynamic_batching.CopyFrom(
                pb.DynamicBatching(
                    max_queue_delay_us=config.batching.max_queue_delay_us,
                    preferred_batch_sizes=config.batching.preferred_batch_sizes,
                )
            )
        return info

    def _max_batch_size(self, config: ModelConfig) -> int:
        """Models whose every input and output starts with a dynamic dimension are batchable."""
        if not batchable(self.inputs, self.outputs):
            return 0
        return DEFAULT_MAX_BATCH_SIZE if config.max_batch_size is None else config.max_batch_size

    def _attach_image_input(self, pre: PreprocessConfig) -> None:
        """Check [preprocess] against the signature and advertise the image input."""
        names = [s.name for s in self.inputs]
        name = pre.input or (names[0] if len(names) == 1 else None)
        spec = next((s for s in self.inputs if s.name == name), None)
        if spec is None:
            raise ConfigError(
                f"[preprocess] input {name!r} is not one of the model's inputs {names}"
            )
        if spec.datatype != "FP32" or len(spec.shape) != 4:
            raise ConfigError(
                f"image input '{spec.name}' must be FP32 rank 4, not {spec.datatype}"
                f" {list(spec.shape)}"
            )
        h_axis, w_axis = (2, 3) if pre.layout == "NCHW" else (1, 2)
        height, width = pre.size or (spec.shape[h_axis], spec.shape[w_axis])
        if pre.size is None and (height < 0 or width < 0):
            raise ConfigError(f"image input '{spec.name}' has dynamic size; set [preprocess] size")
        self._image_input = spec.name
        self._image_size = (height, width)
        self.info.image.CopyFrom(
            pb.ImageInput(
                input=spec.name, height=height, width=width, layout=pre.layout, color=pre.color
            )
        )

    def _attach_scores_output(self, post: PostprocessConfig) -> None:
        """Check [postprocess] against the signature and advertise its top k."""
        names = [s.name for s in self.outputs]
        name = post.output or names[0]
        if name not in names:
            raise ConfigError(f"[postprocess] output {name!r} is not one of {names}")
        self._scores_output = name
        self.info.top_k = post.top_k

    @property
    def batching(self) -> bool:
        return self.info.HasField("dynamic_batching")

    def decode_inputs(
        self, request: pb.PredictRequest, payloads: Sequence[bytes | memoryview] | None = None
    ) -> dict[str, np.ndarray]:
        """The request's tensors as ONNX Runtime feeds (images decoded and preprocessed).

        `payloads`: each input's bytes where they lie (the hop's arena: numeric inputs become
        views, not copies); by default each tensor's `contents`.

        Raises:
            InvalidRequestError: an image cannot be decoded or a string is not UTF-8.
        """
        if payloads is None:
            return {
                tensor.name: self._decode_input(tensor, tensor.contents)
                for tensor in request.inputs
            }
        return {
            tensor.name: self._decode_input(tensor, payload)
            for tensor, payload in zip(request.inputs, payloads, strict=True)
        }

    @property
    def decoding_is_heavy(self) -> bool:
        """Image decoding belongs on the pool; raw tensors decode in microseconds."""
        return self._image_size is not None

    def run(
        self, instance: int, feeds: list[dict[str, np.ndarray]], outputs: list[str]
    ) -> BatchRun:
        """Run several requests' feeds as one batch and split the outputs back per request.

        Raises:
            InvalidRequestError: ONNX Runtime rejects the inputs.
            InternalError: ONNX Runtime failed for another reason (logged here).
        """
        if len(feeds) == 1:
            merged = feeds[0]
        else:
            merged = {name: np.concatenate([f[name] for f in feeds]) for name in feeds[0]}
        merged_ns = time.perf_counter_ns()
        wanted = outputs or [s.name for s in self.outputs]
        # A large run would leave the arena at its peak for good: it shrinks it after itself.
        large = sum(a.nbytes for a in merged.values()) >= SHRINK_MIN_INPUT_BYTES
        try:
            results = self._sessions[instance].run(
                wanted, merged, self._shrinking if large else None
            )
        except (
            ort.capi.onnxruntime_pybind11_state.InvalidArgument,
            ort.capi.onnxruntime_pybind11_state.InvalidGraph,
        ) as exc:
            raise InvalidRequestError(f"the model rejected the inputs: {exc}") from None
        except ort.capi.onnxruntime_pybind11_state.Fail as exc:
            # NOTE: a kernel that cannot run on these inputs (a shape the graph cannot take, e.g.
            # an image too small for a detector's downsampling) fails this way: the caller's
            # input, so a 400 with ORT's reason rather than a 500.
            logger.warning("%s version %s: %s", self.name, self.info.version, first_line(exc))
            raise InvalidRequestError(
                f"the model could not run on these inputs: {first_line(exc)}"
            ) from None
        except Exception:
            logger.exception("inference failed (%s version %s)", self.name, self.info.version)
            raise InternalError("inference failed; see the worker log") from None
        if large:
            release_free_memory()
        computed_ns = time.perf_counter_ns()
        items = []
        offset = 0
        for request_feeds in feeds:
            size = _batch_of(request_feeds) if len(feeds) > 1 else None
            part = [r if size is None else r[offset : offset + size] for r in results]
            offset += size or 0
            items.append(
                ItemResult(
                    outputs=[(n, np.asarray(a)) for n, a in zip(wanted, part, strict=True)],
                    classifications=self._classify(dict(zip(wanted, part, strict=True))),
                )
            )
        return BatchRun(items, merged_ns, computed_ns, time.perf_counter_ns())

    def run_feeds(self, instance: int, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every output of one session for ready-made feeds, as ONNX Runtime returns them.

        The golden check and warm-up use this: the sessions that will serve, with the dtypes
        they really produce, and no statistics, batching or error logging around the run.
        Raises whatever ONNX Runtime raises.
        """
        names = [s.name for s in self.outputs]
        return dict(zip(names, self._sessions[instance].run(names, feeds), strict=True))

    def _decode_input(self, tensor: pb.Tensor, payload: bytes | memoryview) -> np.ndarray:
        array = array_from_buffer(tensor.name, tensor.datatype, tensor.shape, payload)
        if (
            tensor.datatype == BYTES
            and self._image_size is not None
            and tensor.name == self._image_input
        ):
            assert self._config.preprocess is not None
            return images_to_batch(
                list(array.reshape(-1)),
                self._config.preprocess,
                *self._image_size,
                self._max_image_pixels,
            )
        if tensor.datatype == BYTES:
            # NOTE: ONNX Runtime's string tensors take str; it would str() bytes into "b'..'".
            return _utf8_strings(tensor.name, array)
        return array

    def _classify(self, results: dict[str, np.ndarray]) -> list[pb.Classification]:
        post = self._config.postprocess
        if post is None or self._scores_output not in results:
            return []
        scores = np.asarray(results[self._scores_output], dtype=np.float64)
        scores = scores.reshape(scores.shape[0], -1) if scores.ndim > 1 else scores[None, :]
        if post.softmax:
            shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
            scores = shifted / shifted.sum(axis=1, keepdims=True)
        k = min(post.top_k, scores.shape[1])
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        batch = []
        for row, indices in zip(scores, top, strict=True):
            classes = [
                pb.ClassScore(index=int(i), label=self._label(int(i)), score=float(row[i]))
                for i in indices
            ]
            batch.append(pb.Classification(classes=classes))
        return batch

    def top_classes(self, name: str, values: np.ndarray, k: int) -> np.ndarray:
        """The classification extension: the top k of an output as BYTES "score:index:label"
        (Triton's form: the output's own values, no softmax; no label, no ":label"), k per
        batch item for a batched version, else k for the whole output.

        Raises:
            InvalidRequestError: the output is not numeric.
        """
        if values.dtype.kind not in "biuf":
            raise InvalidRequestError(
                f"output '{name}' holds {values.dtype} values; classification needs numbers"
            )
        batched = self.info.max_batch_size > 0 and values.ndim > 1
        rows = values.reshape(values.shape[0], -1) if batched else values.reshape(1, -1)
        k = min(k, rows.shape[1])
        top = np.argsort(-rows, axis=1, kind="stable")[:, :k]
        suffix = (lambda i: f":{self._label(i)}") if self._labels is not None else (lambda i: "")
        strings = [
            f"{float(row[i]):f}:{i}{suffix(int(i))}".encode()
            for row, indices in zip(rows, top, strict=True)
            for i in indices
        ]
        shape = (rows.shape[0], k) if batched else (k,)
        return np.array(strings, dtype=object).reshape(shape)

    def _label(self, index: int) -> str:
        if self._labels is not None and index < len(self._labels):
            return self._labels[index]
        return str(index)


def _batch_of(feeds: dict[str, np.ndarray]) -> int:
    return int(next(iter(feeds.values())).shape[0])


def _utf8_strings(name: str, array: np.ndarray) -> np.ndarray:
    """BYTES elements as the str objects an ONNX string tensor holds.

    Raises:
        InvalidRequestError: an element is not UTF-8 (ONNX Runtime's strings cannot hold it).
    """
    try:
        return np.array([e.decode() for e in array.reshape(-1)], dtype=object).reshape(array.shape)
    except UnicodeDecodeError:
        raise InvalidRequestError(
            f"input '{name}' holds bytes that are not UTF-8; this model's string input "
            "takes UTF-8 text only"
        ) from None
