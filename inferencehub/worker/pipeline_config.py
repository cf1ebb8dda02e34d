"""The `[pipeline]` section of a model.toml: steps (repository models and built-in operations)
wired by tensor names. The rules that need the models themselves are checked when a pipeline
version loads (worker/pipeline.py); these are the ones the file alone decides."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from inferencehub.protocol.datatypes import DATATYPES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PipelineTensor(_Strict):
    """An input the pipeline takes or an output it answers with (its /v2 metadata)."""

    name: str = Field(min_length=1)
    datatype: str = Field(description="KServe v2 datatype: FP32, INT64, BYTES, ...")
    shape: tuple[int, ...] = Field(description="-1 marks a dimension of any size.")

    @model_validator(mode="after")
    def _known_datatype(self) -> Self:
        if self.datatype not in DATATYPES:
            known = ", ".join(sorted(DATATYPES))
            raise ValueError(f"datatype {self.datatype!r} is not one of {known}")
        return self


class PipelineStep(_Strict):
    """One step: a built-in operation (`op`) or a model of the repository (`model`)."""

    name: str = Field("", description="Shown in timings and errors (default: the op or model).")
    op: str | None = Field(None, description="A built-in operation (docs/pipelines.md).")
    model: str | None = Field(None, description="A model of the repository.")
    version: str = Field("", description="The model's version or label ('' = its default).")
    inputs: dict[str, str] = Field(
        description="The step's input name -> the pipeline tensor it reads."
    )
    outputs: dict[str, str] = Field(
        default_factory=dict,
        description="The step's output name -> the pipeline tensor it writes (default: the "
        "same names).",
    )
    params: dict[str, Any] = Field(default_factory=dict, description="The op's parameters.")

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.op is None) == (self.model is None):
            raise ValueError("a step names exactly one of op or model")
        if self.model is not None and self.params:
            raise ValueError("params belong to op steps; a model step has none")
        return self

    @property
    def label(self) -> str:
        return self.name or self.op or self.model or "step"


class PipelineConfig(_Strict):
    """A model whose versions run steps instead of one ONNX file."""

    inputs: list[PipelineTensor] = Field(min_length=1)
    outputs: list[PipelineTensor] = Field(min_length=1)
    image_input: str | None = Field(
        None,
        description="The BYTES input that takes encoded images: HTTP image bodies and the "
        "SDK's predict_image reach it.",
    )
    steps: list[PipelineStep] = Field(min_length=1)

    @model_validator(mode="after")
    def _image_input_is_bytes(self) -> Self:
        if self.image_input is not None:
            found = [t for t in self.inputs if t.name == self.image_input]
            if not found or found[0].datatype != "BYTES":
                raise ValueError(f"image_input {self.image_input!r} must name a BYTES input")
        return self
