"""Lesion pseudo-masks, their correction in Segment Editor, and saving corrections as training data (no Qt).

- "Generate pseudo-mask" runs `covidct segment-lesions INPUT -o OUT/lesions.seg.nrrd --device D` in the background
  on a temporary copy of the CT and loads the result: segments ground-glass opacity / consolidation / crazy paving
  with standard terminology, closed surfaces in 3-D, and a point list of the localized lesions. A mask made
  elsewhere (e.g. COVID-SemiSeg's pseudo-labels) can be imported from a file instead.
- ``prepare_segment_editor`` points a Segment Editor parameter node at the segmentation and the CT, so the
  annotator corrects it with Segment Editor's tools (the Widget then switches to that module).
- "Save correction" writes the CT and the corrected mask into the corrected-masks folder (CovidCTAnalysis.mrml.dataset:
  images/CASE.nii.gz, masks/CASE.nii.gz) that the lesion training script fine-tunes on
  (``scripts/train_lesions.py --corrected FOLDER``).

One logic for every front end: the Lesion Segmentation module's panel (CovidCTLesionSegmentationLib re-exports it)
and the browser app's annotator page (CovidCTAnalysis.web) drive this class.
"""

from __future__ import annotations

from pathlib import Path

from ..labels import LESION_SEGMENTS, LUNG_SEGMENTS
from .dataset import save_correction
from .jobs import JobRunner, ProcessFactory, RunningLogic
from .markups import add_lesion_markups, lesion_points
from .parameters import Choice, NodeReference, ParameterNode, String
from .process import BackgroundProcess, covidct_command
from .results import AnalysedVolume, nothing_added_on_failure, remove_with_helpers
from .segmentations import label_array, load_segmentation
from .volumes import geometry, ijk_to_ras

DEVICES = ("auto", "cpu", "cuda")


class LesionSegmentationParameters(ParameterNode):
    """CT, device, the lesion segmentation being corrected, and where corrections are saved."""

    module_name = "CovidCTLesionSegmentation"
    inputVolume = NodeReference("vtkMRMLScalarVolumeNode")
    device = Choice("auto", DEVICES)
    segmentation = NodeReference("vtkMRMLSegmentationNode")
    datasetFolder = String("")
    caseId = String("")


OUTPUT_NAME = "lesions.seg.nrrd"
KIND_ATTRIBUTE = "CovidCTAnalysis.Kind"


def segment_lesions_command(source: Path, outdir: Path, *, device: str = "auto",
                            python: str | None = None) -> list[str]:
    outdir.mkdir(parents=True, exist_ok=True)
    return covidct_command("segment-lesions", source, "-o", outdir / OUTPUT_NAME, "--device", device, python=python)


def lesion_summary(segmentation_node, volume_node, lungs_node=None) -> list[tuple[str, float, int]]:
    """[(class name, volume mL, number of connected lesions)] for each lesion class present."""
    labels = label_array(segmentation_node, volume_node, LESION_SEGMENTS)
    lungs = label_array(lungs_node, volume_node, LUNG_SEGMENTS) if lungs_node is not None else None
    points = lesion_points(labels, ijk_to_ras(volume_node), LESION_SEGMENTS, lungs=lungs, min_volume_ml=0.0)
    g = geometry(volume_node)
    voxel_ml = float(g.spacing[0] * g.spacing[1] * g.spacing[2]) / 1000.0
    out = []
    for segment in LESION_SEGMENTS:
        voxels = int((labels == segment.label).sum())
        if voxels:
            out.append((segment.name, voxels * voxel_ml, sum(p.label == segment.label for p in points)))
    return out


class LesionSegmentationLogic(RunningLogic):
    """Pseudo-mask generation or import, Segment Editor set-up, saving corrections (see the module docstring)."""

    def __init__(self, scene, process_factory: ProcessFactory = BackgroundProcess, python: str | None = None):
        self.scene = scene
        self.python = python
        self.runner = JobRunner(process_factory)
        self.markups = None

    def start_pseudo_mask(self, parameters: LesionSegmentationParameters) -> None:
        volume = parameters.inputVolume
        if volume is None:
            raise ValueError("select a CT volume")
        device = parameters.device

        def command(source: Path, outdir: Path):
            return segment_lesions_command(source, outdir, device=device, python=self.python)

        analysed = AnalysedVolume(self.scene, volume)

        def load(outdir: Path) -> None:
            ct = analysed.node()
            node = self.load_mask(parameters, outdir / OUTPUT_NAME, name=f"{ct.GetName()} lesion pseudo-mask",
                                  volume=ct)
            node.StorableModified()  # its file was temporary: let Slicer's Save write it

        self.runner.run(volume, command, load, stages=("lesions",))

    def load_mask(self, parameters: LesionSegmentationParameters, path: str | Path, name: str | None = None,
                  volume=None):
        """Load a lesion label file as the segmentation to correct (it becomes ``parameters.segmentation``).

        ``volume``: the CT the mask belongs to (default: ``parameters.inputVolume``). The mask and its CT are
        corrected and saved as a pair, so ``parameters.inputVolume`` is set to it when another CT was selected
        meanwhile (a pseudo-mask run whose CT selection changed while it ran).
        """
        volume = volume if volume is not None else parameters.inputVolume
        if volume is None:
            raise ValueError("select the CT volume the mask belongs to")
        path = Path(path)
        before = (parameters.inputVolume, parameters.segmentation)
        try:
            with nothing_added_on_failure(self.scene):  # a mask that cannot be read adds nothing
                node = load_segmentation(self.scene, path, LESION_SEGMENTS,
                                         name=name or f"{volume.GetName()} lesions", reference_volume=volume,
                                         closed_surfaces=True)
                node.SetAttribute(KIND_ATTRIBUTE, "lesions")
                if parameters.inputVolume is not volume:
                    parameters.inputVolume = volume
                parameters.segmentation = node
                self.update_markups(parameters)
        except BaseException:  # ... and changes no selection either
            if parameters.inputVolume is not before[0]:
                parameters.inputVolume = before[0]
            if parameters.segmentation is not before[1]:
                parameters.segmentation = before[1]
            raise
        return node

    def update_markups(self, parameters: LesionSegmentationParameters):
        """(Re)build the point list of localized lesions from the current segmentation (e.g. after a correction)."""
        remove_with_helpers(self.scene, self.markups)
        self.markups = None
        if parameters.segmentation is None or parameters.inputVolume is None:
            return None
        labels = label_array(parameters.segmentation, parameters.inputVolume, LESION_SEGMENTS)
        points = lesion_points(labels, ijk_to_ras(parameters.inputVolume), LESION_SEGMENTS)
        self.markups = add_lesion_markups(self.scene, points, name=f"{parameters.segmentation.GetName()} lesions")
        return self.markups

    def prepare_segment_editor(self, parameters: LesionSegmentationParameters, editor_node=None):
        """A Segment Editor parameter node set to the lesion segmentation and its CT (created when not given)."""
        if parameters.segmentation is None or parameters.inputVolume is None:
            raise ValueError("generate or import a lesion mask first")
        if editor_node is None:
            editor_node = self.scene.AddNewNodeByClass("vtkMRMLSegmentEditorNode")
        editor_node.SetAndObserveSegmentationNode(parameters.segmentation)
        if hasattr(editor_node, "SetAndObserveSourceVolumeNode"):
            editor_node.SetAndObserveSourceVolumeNode(parameters.inputVolume)
        else:  # Slicer < 5.2 called it the master volume
            editor_node.SetAndObserveMasterVolumeNode(parameters.inputVolume)
        segmentation = parameters.segmentation.GetSegmentation()
        if segmentation.GetNumberOfSegments():
            editor_node.SetSelectedSegmentID(segmentation.GetNthSegmentID(0))
        return editor_node

    def save_correction(self, parameters: LesionSegmentationParameters) -> tuple[Path, Path]:
        """Write the CT and the corrected mask into ``parameters.datasetFolder`` as case ``parameters.caseId``."""
        if parameters.segmentation is None or parameters.inputVolume is None:
            raise ValueError("there is no lesion segmentation to save")
        if not parameters.datasetFolder:
            raise ValueError("choose the dataset folder")
        if not parameters.caseId:
            raise ValueError("enter a case id")
        paths = save_correction(parameters.inputVolume, parameters.segmentation, parameters.datasetFolder,
                                parameters.caseId)
        self.update_markups(parameters)
        return paths
