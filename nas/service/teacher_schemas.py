"""Response bodies that show the teacher as the reference: the teacher itself, and a subnet against it.

Built from :mod:`nas.reference`, the comparisons the dashboard shows as well; :mod:`.schemas` uses them in
supernets, search details, fronts, candidates and final models.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from pydantic import BaseModel, Field

from nas.budget import format_macs
from nas.reference import Comparison, SearchReference, TeacherReference
from nas.teacher import TeacherInfo


class TeacherOut(BaseModel):
    """A supernet's teacher: the file it was distilled from, and its cost at the supernet's resolution."""

    path: str
    sha256: str
    architecture: str
    hparams: dict[str, Any]
    reference_arch: Optional[str]
    macs: int
    macs_text: str
    params: int
    size: list[int]

    @classmethod
    def of(cls, info: TeacherInfo | None) -> Optional["TeacherOut"]:
        return None if info is None else cls(**info.to_dict(), macs_text=format_macs(info.macs))


class SearchTeacherOut(TeacherOut):
    """The teacher of a search: its cost and its figures on the search split, measured once with the search's
    evaluator (``metrics`` empty until then)."""

    metrics: dict[str, float] = Field(description="the teacher's figures on the search split")
    evaluator: Optional[str]
    split: Optional[str]

    @classmethod
    def of_reference(cls, reference: TeacherReference | None) -> Optional["SearchTeacherOut"]:
        if reference is None:
            return None
        return cls(**TeacherOut.of(reference.info).model_dump(), metrics=dict(reference.metrics),
                   evaluator=reference.evaluator, split=reference.split)


class MetricVsTeacherOut(BaseModel):
    value: float
    teacher: float
    ratio: Optional[float] = Field(description="value / the teacher's value (null when the teacher's is 0)")
    difference: float = Field(description="value - the teacher's value")


class VsTeacherOut(BaseModel):
    """A subnet against its teacher."""

    macs_ratio: Optional[float] = Field(description="teacher MACs / subnet MACs: x fewer MACs")
    params_ratio: Optional[float] = Field(description="teacher parameters / subnet parameters")
    metrics: dict[str, MetricVsTeacherOut] = Field(description="each metric both report (empty until the teacher "
                                                               "is measured on the split)")

    @classmethod
    def of(cls, comparison: Comparison | None) -> Optional["VsTeacherOut"]:
        if comparison is None:
            return None
        return cls(macs_ratio=comparison.macs_ratio, params_ratio=comparison.params_ratio,
                   metrics={k: MetricVsTeacherOut(**vars(v)) for k, v in comparison.metrics.items()})


def compare_with_teacher(reference: SearchReference | None, macs: int, params: int,
                         metrics: Mapping[str, float]) -> Optional[VsTeacherOut]:
    """A subnet against the search's teacher; None without a teacher."""
    teacher = None if reference is None else reference.teacher
    return None if teacher is None else VsTeacherOut.of(teacher.compare(macs, params, metrics))


TEACHER_NOTE = Field(None, description="why `teacher` is null, or why its figures are missing (not measured yet)")
