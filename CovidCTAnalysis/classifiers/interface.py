"""What every classifier implements (``Classifier``) and the one result it returns (``ClassifierResult``).

A classifier is one seed system's subpackage, ``classifiers/<name with _ for ->/``, whose ``system.py`` defines
``CLASSIFIER``: a class with the attributes and methods below. The pipeline, ``covidct classify`` and the Slicer
panel reach it only through ``classifiers.table``; none of them names a system.

Nothing here imports torch: the table and this module are read by front ends that only list classifiers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    import SimpleITK as sitk

    from ..io import CTVolume
    from ..labels import Segment

#: ``Classifier.inputs`` values: one 2-D slice (a figure or one DICOM image); a CT volume or a slice stack.
SLICE, VOLUME = "slice", "volume"
INPUT_KINDS = (SLICE, VOLUME)

#: Progress callback of one run: fraction done 0..1 and a message.
Progress = Callable[[float, str], None]


@dataclass
class ClassifierResult:
    """One classifier's answer on one CT; every image lies on the CT's canonical grid (``CTVolume.image``).

    probability: P(COVID-19). label: "COVID-19" or "non-COVID".
    heatmaps: explanation method -> float32 map in [0, 1] (e.g. {"gradcam": ..., "lrp": ...});
    default_heatmap: the method whose map is the classifier's ``heatmap-MODEL.nrrd`` (a key of ``heatmaps``).
    details: the model's own JSON-ready numbers (report.json fields; the scalars become CSV columns).
    segments: name -> (uint8 label map, its Segment or a tuple of Segments, one per label value), e.g. DeCoVNet's
    {"localization": ...}.
    points: name -> (x, y, z) LPS mm, e.g. a localized lesion's centre.
    """

    probability: float
    label: str
    version: str
    heatmaps: dict[str, sitk.Image] = field(default_factory=dict)
    default_heatmap: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    segments: dict[str, tuple[sitk.Image, Segment | tuple[Segment, ...]]] = field(default_factory=dict)
    points: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.heatmaps and self.default_heatmap not in self.heatmaps:
            raise ValueError(f"default heatmap {self.default_heatmap!r} is not one of {sorted(self.heatmaps)}")

    @property
    def heatmap(self) -> sitk.Image | None:
        """The default explanation map (None when the classifier made none)."""
        return self.heatmaps.get(self.default_heatmap) if self.default_heatmap else None

    def summary(self) -> dict[str, Any]:
        """JSON-ready: probability, label, the model's details, and the points as [x, y, z] lists."""
        out = {"probability": float(self.probability), "label": self.label, **self.details}
        if self.points:
            out["points_mm"] = {name: [float(v) for v in p] for name, p in self.points.items()}
        return out

    def csv_columns(self) -> dict[str, str]:
        """``covidct classify``'s columns: probability, label, then every scalar detail (docs/CONTRACTS.md)."""
        row = {"probability": f"{self.probability:.6f}", "label": self.label}
        for key, value in self.details.items():
            if key in row or value is None or isinstance(value, (dict, list, tuple)):
                continue
            row[key] = f"{value:.6g}" if isinstance(value, float) else str(value)
        for name, point in self.points.items():
            row[f"{name}_mm"] = " ".join(f"{v:.1f}" for v in point)
        return row


@runtime_checkable
class Classifier(Protocol):
    """A loaded classifier. ``inputs`` (a subset of ``INPUT_KINDS``) and ``needs_lungs`` are class attributes, so
    they can be read without loading weights (or torch). A classifier that uses the lesion label map sets the class
    attribute ``needs_lesions`` and takes it as ``run(..., lesions=...)`` (the pipeline passes its own map). One that
    finds the lungs of a display-windowed 2-D picture itself, with a registered lung model, names that model in the
    class attribute ``picture_lungs`` (front ends list it among the models that ran, with its version and any user
    weights)."""

    inputs: ClassVar[tuple[str, ...]]
    needs_lungs: ClassVar[bool]
    version: str

    @classmethod
    def load(cls, device: Any, registry: Any = None) -> Classifier:
        """The classifier with its registered weights (sha256 verified) on ``device``; ``registry``: a registry.json
        path or a loaded Registry, None for the default one."""

    def run(self, ct: CTVolume, lungs: sitk.Image | None, progress: Progress | None = None) -> ClassifierResult:
        """Classify ``ct`` (``lungs``: its lung label map on the canonical grid, given when ``needs_lungs``)."""


class ModelClassifier:
    """Base of a system that wraps one loaded model object (with a ``version``): ``load`` = ``cls(load_model(...))``.

    Subclasses set ``inputs`` and ``needs_lungs``, and implement ``load_model`` (importing their network lazily) and
    ``run``.
    """

    inputs: ClassVar[tuple[str, ...]] = ()
    needs_lungs: ClassVar[bool] = True

    def __init__(self, model: Any):
        self.model = model
        self.version: str = model.version

    @classmethod
    def load(cls, device: Any, registry: Any = None):
        return cls(cls.load_model(device, registry))

    @staticmethod
    def load_model(device: Any, registry: Any = None) -> Any:
        raise NotImplementedError
