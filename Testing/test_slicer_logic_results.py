"""Where the Slicer modules' logic puts a run's results, and what a run that cannot be loaded leaves behind.

A background run takes seconds to minutes; meanwhile the user may select another CT, delete the CT, or the outputs
may turn out unreadable. The results must go onto the CT that was analysed (never onto whichever volume is
selected when the run ends), a CT removed meanwhile must give a clear failure rather than results attached to a
node that is gone, and a failed load must add nothing to the scene (docs/SLICER.md, "How a run works"). The demo
CT is created by its run: it is saved with the scene like the other outputs and replaced with them by the next demo.
Processes are faked (the process runner is the logic's seam), writing outputs made from the demo CT's truth.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("slicer")

import SimpleITK as sitk  # noqa: E402

from CovidCTAnalysis.demo import make_demo_ct, write_demo_case  # noqa: E402
from CovidCTAnalysis.io import write_label_map, write_volume  # noqa: E402
from CovidCTAnalysis.labels import LESION_SEGMENTS, LUNG_SEGMENTS  # noqa: E402
from CovidCTAnalysis.mrml.process import ProcessState  # noqa: E402
from CovidCTAnalysis.mrml.volumes import load_volume, remove_with_helpers  # noqa: E402

DEMO_SIZE = (64, 64, 32)

pytestmark = pytest.mark.mrml

# the Slicer modules on sys.path, the stand-in for a `covidct` process, and the scene fixture
from test_slicer_modules_logic import FakeProcess, _wait, headless  # noqa: E402,F401

from CovidCTAnalyzeLib.AnalyzeLogic import AnalyzeLogic  # noqa: E402
from CovidCTAnalyzeLib.Parameters import AnalyzeParameters  # noqa: E402
from CovidCTClassifiersLib.ClassifierLogic import ClassifierLogic  # noqa: E402
from CovidCTClassifiersLib.Parameters import ClassifierParameters  # noqa: E402
from CovidCTLesionSegmentationLib.LesionSegmentationLogic import LesionSegmentationLogic  # noqa: E402
from CovidCTLesionSegmentationLib.Parameters import LesionSegmentationParameters  # noqa: E402
from CovidCTLungSegmentationLib.LungSegmentationLogic import OUTPUT_NAME, LungSegmentationLogic  # noqa: E402
from CovidCTLungSegmentationLib.Parameters import LungSegmentationParameters  # noqa: E402


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo CT with lungs, lesions and a 0..1 heatmap on its grid; beside it the same CT on another grid."""
    folder = tmp_path_factory.mktemp("demo")
    case = make_demo_ct(size=DEMO_SIZE, seed=3)
    ct = write_demo_case(case, folder)
    write_label_map(case.lungs, folder / "lungs.seg.nrrd", LUNG_SEGMENTS)
    write_label_map(case.lesions, folder / "lesions.seg.nrrd", LESION_SEGMENTS)
    heat = sitk.Cast(case.lesions > 0, sitk.sitkFloat32)
    write_volume(heat, folder / "heatmap.nrrd")
    write_volume(heat * 2.0, folder / "heatmap-out-of-range.nrrd")
    other = sitk.Image(case.image)
    other.SetSpacing([2.0 * s for s in case.image.GetSpacing()])
    write_volume(other, folder / "other-grid-ct.nrrd")
    return ct, folder


def _outputs(demo, tmp_path, *, main_heatmap: str = "heatmap.nrrd", with_ct: bool = False) -> dict[str, Path]:
    """An output folder of `covidct analyze --models decovnet`; decovnet also gives an LRP map (a second heatmap)."""
    ct, folder = demo
    report = {"input": {"path": str(ct), "size": list(DEMO_SIZE)}, "lesions": None, "unavailable": {},
              "lungs": {"right_ml": 1.0, "left_ml": 2.0, "total_ml": 3.0},
              "classifiers": {"decovnet": {"probability": 0.8, "label": "COVID-19", "heatmap": "heatmap-decovnet.nrrd",
                                           "heatmaps": {"cam": "heatmap-decovnet.nrrd",
                                                        "lrp": "heatmap-decovnet-lrp.nrrd"}}}}
    (tmp_path / "report.json").write_text(json.dumps(report))
    files = {"report.json": tmp_path / "report.json", "lungs.seg.nrrd": folder / "lungs.seg.nrrd",
             "lesions.seg.nrrd": folder / "lesions.seg.nrrd", "heatmap-decovnet-lrp.nrrd": folder / "heatmap.nrrd",
             "heatmap-decovnet.nrrd": folder / main_heatmap}
    if with_ct:  # a --demo run writes the CT it generated into its output folder
        files[ct.name] = ct
    return files


def _node_ids(scene) -> set:
    return {scene.GetNthNode(index).GetID() for index in range(scene.GetNumberOfNodes())}


def _reference_geometry(node) -> str:
    import slicer

    name = slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName()
    return node.GetSegmentation().GetConversionParameter(name)


def _geometry_of(scene, volume) -> str:
    """The reference geometry a segmentation made for ``volume`` has."""
    probe = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    probe.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    geometry = _reference_geometry(probe)
    scene.RemoveNode(probe)
    return geometry


def test_a_classifier_whose_results_fail_to_load_adds_nothing(headless, demo, tmp_path):
    """The LRP map loads before the main heatmap is found out of 0..1: that map, its storage and display nodes and
    the heatmap colour table must go again, so the failure leaves the scene as it was."""
    scene = headless.scene
    parameters = ClassifierParameters.of(scene)
    parameters.inputVolume = load_volume(scene, demo[0], "patient CT")
    before = _node_ids(scene)
    files = _outputs(demo, tmp_path, main_heatmap="heatmap-out-of-range.nrrd")
    logic = ClassifierLogic(scene, "decovnet", process_factory=FakeProcess(files))
    logic.start(parameters)
    _wait(logic)
    assert logic.state is ProcessState.FAILED and "must lie in 0..1" in logic.error_message
    assert _node_ids(scene) == before and scene.GetNumberOfNodes() == len(before)
    assert logic.heatmap is None and logic.extra_heatmaps == {} and logic.result is None


def test_switching_the_ct_during_a_run_keeps_the_results_on_the_analysed_ct(headless, demo, tmp_path):
    """The user selects another CT (on another grid) while the pseudo-mask and the classifier run: their outputs
    belong to the CT the run started on, so they are loaded onto it and shown over it."""
    scene = headless.scene
    renderer = headless.slice_renderer()
    ct, folder = demo
    analysed = load_volume(scene, ct, "patient A")
    other = load_volume(scene, folder / "other-grid-ct.nrrd", "patient B")

    lesion_parameters = LesionSegmentationParameters.of(scene)
    lesion_parameters.inputVolume = analysed
    lesions = LesionSegmentationLogic(scene, process_factory=FakeProcess({"lesions.seg.nrrd": folder /
                                                                          "lesions.seg.nrrd"}))
    lesions.start_pseudo_mask(lesion_parameters)
    lesion_parameters.inputVolume = other
    _wait(lesions)
    assert lesions.state is ProcessState.SUCCEEDED, lesions.error_message
    mask = lesion_parameters.segmentation
    assert mask.GetName() == "patient A lesion pseudo-mask"
    assert _reference_geometry(mask) == _geometry_of(scene, analysed) != _geometry_of(scene, other)
    assert lesion_parameters.inputVolume is analysed  # the mask is corrected and saved with its own CT

    classifier_parameters = ClassifierParameters.of(scene)
    classifier_parameters.inputVolume = analysed
    classifier = ClassifierLogic(scene, "decovnet", process_factory=FakeProcess(_outputs(demo, tmp_path)))
    classifier.start(classifier_parameters)
    classifier_parameters.inputVolume = other
    _wait(classifier)
    assert classifier.state is ProcessState.SUCCEEDED, classifier.error_message
    assert renderer.composite.GetBackgroundVolumeID() == analysed.GetID()
    assert renderer.composite.GetForegroundVolumeID() == classifier.heatmap.GetID()


def _lesion_run(scene, demo, tmp_path):
    """(parameters, logic, start method) of a lesion pseudo-mask run."""
    fake = FakeProcess({"lesions.seg.nrrd": demo[1] / "lesions.seg.nrrd"})
    return LesionSegmentationParameters.of(scene), LesionSegmentationLogic(scene, fake), "start_pseudo_mask"


def _classifier_run(scene, demo, tmp_path):
    fake = FakeProcess(_outputs(demo, tmp_path))
    return ClassifierParameters.of(scene), ClassifierLogic(scene, "decovnet", fake), "start"


def _analyze_run(scene, demo, tmp_path):
    return AnalyzeParameters.of(scene), AnalyzeLogic(scene, FakeProcess(_outputs(demo, tmp_path))), "start"


def _lung_run(scene, demo, tmp_path):
    fake = FakeProcess({OUTPUT_NAME: demo[1] / "lungs.seg.nrrd"})
    return LungSegmentationParameters.of(scene), LungSegmentationLogic(scene, fake), "start"


@pytest.mark.parametrize("run", [_lesion_run, _classifier_run, _analyze_run, _lung_run],
                         ids=["lesions", "classifier", "analyze", "lungs"])
def test_removing_the_ct_during_a_run_is_a_failure_that_adds_nothing(headless, demo, tmp_path, run):
    """The user deletes the CT in the Data module while its run goes on: the outputs have nothing to lie on, so the
    run fails with one line naming the CT and no orphan results appear in the scene."""
    scene = headless.scene
    parameters, logic, start = run(scene, demo, tmp_path)
    ct = load_volume(scene, demo[0], "patient A")
    parameters.inputVolume = ct
    getattr(logic, start)(parameters)
    remove_with_helpers(scene, ct)
    before = _node_ids(scene)
    _wait(logic)
    assert logic.state is ProcessState.FAILED
    assert "the volume patient A was removed during the run; nothing loaded" in logic.error_message
    assert _node_ids(scene) == before


def test_the_demo_ct_is_saved_with_the_scene_and_replaced_by_the_next_demo(headless, demo, tmp_path):
    """The demo CT is read from the run's temporary folder, which is gone after the load: like the other outputs it
    must be marked modified so Save Data writes it. It belongs to its run, so a second demo replaces it with the
    other results (one demo CT in the scene); analysing that demo CT again keeps it, as any CT the user brings."""
    scene = headless.scene
    parameters = AnalyzeParameters.of(scene)
    logic = AnalyzeLogic(scene, process_factory=FakeProcess(_outputs(demo, tmp_path, with_ct=True)))
    logic.start_demo(parameters)
    _wait(logic)
    assert logic.state is ProcessState.SUCCEEDED, logic.error_message
    first = logic.results.volume
    assert first.GetModifiedSinceRead() and not Path(first.GetStorageNode().GetFileName()).exists()
    assert parameters.inputVolume is first

    logic.start_demo(parameters)
    _wait(logic)
    assert logic.state is ProcessState.SUCCEEDED, logic.error_message
    second = logic.results.volume
    volumes = [node for node in _volumes(scene) if not node.GetAttribute("CovidCTAnalysis.Kind")]
    assert first.GetScene() is None and volumes == [second] and second.GetModifiedSinceRead()

    logic.start(parameters)  # parameters.inputVolume: the demo CT
    _wait(logic)
    assert logic.state is ProcessState.SUCCEEDED, logic.error_message
    assert logic.results.volume is second and second.GetScene() is scene
    assert [node for node in _volumes(scene) if not node.GetAttribute("CovidCTAnalysis.Kind")] == [second]


def _volumes(scene) -> list:
    found = scene.GetNodesByClass("vtkMRMLScalarVolumeNode")
    return [found.GetItemAsObject(index) for index in range(found.GetNumberOfItems())]


def test_a_scene_closed_during_a_run_does_not_take_the_results(headless, demo, tmp_path):
    """Closing the scene hands node IDs out again: a CT opened afterwards may get the analysed CT's ID, yet it is
    another volume, so the run must not attach its results to it."""
    scene = headless.scene
    parameters, logic, _ = _classifier_run(scene, demo, tmp_path)
    parameters.inputVolume = load_volume(scene, demo[0], "patient A")
    analysed_id = parameters.inputVolume.GetID()
    logic.start(parameters)
    scene.Clear(False)
    newcomer = load_volume(scene, demo[0], "patient C")
    assert newcomer.GetID() == analysed_id
    before = _node_ids(scene)
    _wait(logic)
    assert logic.state is ProcessState.FAILED and "patient A was removed during the run" in logic.error_message
    assert _node_ids(scene) == before


def test_a_mask_load_that_fails_late_changes_no_selection(headless, demo, monkeypatch):
    """The lesion points fail after the mask was read: the mask goes, and the CT selected before stays selected."""
    import CovidCTAnalysis.mrml.lesion_logic as lesion_logic

    scene = headless.scene
    ct, folder = demo
    analysed = load_volume(scene, ct, "patient A")
    other = load_volume(scene, folder / "other-grid-ct.nrrd", "patient B")
    parameters = LesionSegmentationParameters.of(scene)
    parameters.inputVolume = other
    before = _node_ids(scene)

    def broken(*args, **kwargs):
        raise RuntimeError("no points")

    monkeypatch.setattr(lesion_logic, "add_lesion_markups", broken)
    with pytest.raises(RuntimeError, match="no points"):
        LesionSegmentationLogic(scene).load_mask(parameters, folder / "lesions.seg.nrrd", volume=analysed)
    assert parameters.inputVolume is other and parameters.segmentation is None
    assert _node_ids(scene) == before
