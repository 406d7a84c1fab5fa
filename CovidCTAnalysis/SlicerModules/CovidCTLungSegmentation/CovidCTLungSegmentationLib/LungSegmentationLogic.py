"""Right and left lung segmentation of a CT volume node, run in the background (no Qt: the Widget drives it).

The process is `covidct segment-lungs INPUT -o OUT/lungs.seg.nrrd [--model M] --device D` on a temporary copy of
the volume; the result becomes a segmentation node "<volume> lungs" (segments right lung / left lung with standard
terminology, on the volume's geometry) and the lung volumes in millilitres are read from the node itself.
"""

from __future__ import annotations

from pathlib import Path

from CovidCTAnalysis.labels import LUNG_SEGMENTS
from CovidCTAnalysis.mrml.jobs import JobRunner, ProcessFactory, RunningLogic
from CovidCTAnalysis.mrml.process import BackgroundProcess, covidct_command
from CovidCTAnalysis.mrml.results import AnalysedVolume, nothing_added_on_failure, remove_with_helpers
from CovidCTAnalysis.mrml.segmentations import load_segmentation, segment_voxel_counts
from CovidCTAnalysis.mrml.volumes import geometry

from .Parameters import LungSegmentationParameters

OUTPUT_NAME = "lungs.seg.nrrd"


def available_models() -> list[str]:
    """Lung models this version ships (the model registry)."""
    from CovidCTAnalysis.models.registry import load_registry

    return load_registry().available("lung-segmentation")


def segment_lungs_command(source: Path, outdir: Path, *, model: str = "", device: str = "auto",
                          python: str | None = None) -> list[str]:
    outdir.mkdir(parents=True, exist_ok=True)
    args = ["segment-lungs", source, "-o", outdir / OUTPUT_NAME, "--device", device]
    if model:
        args += ["--model", model]
    return covidct_command(*args, python=python)


def volumes_ml(segmentation_node, volume_node) -> dict[str, float]:
    """{"right lung", "left lung", "both lungs": mL} measured on the volume's grid."""
    g = geometry(volume_node)
    voxel_ml = float(g.spacing[0] * g.spacing[1] * g.spacing[2]) / 1000.0
    counts = segment_voxel_counts(segmentation_node, volume_node)
    out = {s.name: counts.get(s.name, 0) * voxel_ml for s in LUNG_SEGMENTS}
    out["both lungs"] = sum(out.values())
    return out


class LungSegmentationLogic(RunningLogic):
    """Segments the lungs of the selected volume; ``segmentation`` and ``volumes_ml`` hold the last result."""

    def __init__(self, scene, process_factory: ProcessFactory = BackgroundProcess, python: str | None = None):
        self.scene = scene
        self.python = python
        self.runner = JobRunner(process_factory)
        self.segmentation = None
        self.volumes_ml: dict[str, float] = {}

    def start(self, parameters: LungSegmentationParameters) -> None:
        volume = parameters.inputVolume
        if volume is None:
            raise ValueError("select a CT volume")
        model, device, show3d = parameters.model, parameters.device, parameters.show3D

        def command(source: Path, outdir: Path):
            return segment_lungs_command(source, outdir, model=model, device=device, python=self.python)

        analysed = AnalysedVolume(self.scene, volume)  # the CT segmented, whichever is selected when the run ends

        def load(outdir: Path) -> None:
            ct = analysed.node()  # a CT removed during the run fails the run here
            self.clear()
            with nothing_added_on_failure(self.scene):  # a load that fails adds nothing
                try:
                    self.segmentation = load_segmentation(
                        self.scene, outdir / OUTPUT_NAME, LUNG_SEGMENTS, name=f"{ct.GetName()} lungs",
                        reference_volume=ct, closed_surfaces=show3d, fill_opacity=0.3)
                    self.segmentation.StorableModified()  # its file was temporary: let Slicer's Save write it
                    self.volumes_ml = volumes_ml(self.segmentation, ct)
                except BaseException:
                    self.segmentation, self.volumes_ml = None, {}
                    raise

        self.runner.run(volume, command, load, stages=("lungs",))

    def clear(self) -> None:
        """Remove the previous result from the scene."""
        remove_with_helpers(self.scene, self.segmentation)
        self.segmentation = None
        self.volumes_ml = {}
