"""The Slicer modules' logic (the <Module>Lib packages, no Qt) on a real slicer-core scene.

Real `covidct` processes where it matters (an analysis of the user's volume, a cancel, lung segmentation, the lesion
model's clear refusal); elsewhere an injected fake process writes prepared outputs, the way the modules' logic is
meant to be tested (the process runner is a seam). This version ships no classifier and no lesion model: the
classifier and lesion files the fakes write are made from the demo CT's truth (see each test).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("slicer")

import SimpleITK as sitk  # noqa: E402

from CovidCTAnalysis.demo import make_demo_ct, write_demo_case  # noqa: E402
from CovidCTAnalysis.io import write_label_map, write_volume  # noqa: E402
from CovidCTAnalysis.labels import LESION_SEGMENTS, LUNG_SEGMENTS  # noqa: E402
from CovidCTAnalysis.mrml import heatmaps  # noqa: E402
from CovidCTAnalysis.mrml.process import ProcessState, ProgressEvent  # noqa: E402
from CovidCTAnalysis.mrml.scene import new_scene  # noqa: E402
from CovidCTAnalysis.mrml.segmentations import segment_voxel_counts  # noqa: E402
from CovidCTAnalysis.mrml.volumes import array_from_volume, ijk_to_ras, load_volume  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SLICER_MODULES = REPO / "CovidCTAnalysis" / "SlicerModules"
MODULES = ("CovidCTAnalyze", "CovidCTLungSegmentation", "CovidCTLesionSegmentation", "CovidCTClassifiers")
DEMO_SIZE = (96, 96, 48)

pytestmark = pytest.mark.mrml

for _module in MODULES:
    if str(SLICER_MODULES / _module) not in sys.path:
        sys.path.insert(0, str(SLICER_MODULES / _module))

from CovidCTAnalyzeLib.AnalyzeLogic import AnalyzeLogic, models_argument  # noqa: E402
from CovidCTAnalyzeLib.Parameters import AnalyzeParameters  # noqa: E402
from CovidCTClassifiersLib.ClassifierLogic import ClassifierLogic, classifier_choices  # noqa: E402
from CovidCTClassifiersLib.Parameters import ClassifierParameters  # noqa: E402
from CovidCTLesionSegmentationLib.LesionSegmentationLogic import LesionSegmentationLogic, lesion_summary  # noqa: E402
from CovidCTLesionSegmentationLib.Parameters import LesionSegmentationParameters  # noqa: E402
from CovidCTLungSegmentationLib.LungSegmentationLogic import LungSegmentationLogic  # noqa: E402
from CovidCTLungSegmentationLib.Parameters import LungSegmentationParameters  # noqa: E402


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo CT on disk with its truth, lesions.seg.nrrd from the truth, and a smooth heatmap on its grid."""
    folder = tmp_path_factory.mktemp("demo")
    case = make_demo_ct(size=DEMO_SIZE, seed=2)
    ct = write_demo_case(case, folder)
    write_label_map(case.lesions, folder / "lesions.seg.nrrd", LESION_SEGMENTS)
    blurred = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(sitk.Cast(case.lesions > 0, sitk.sitkFloat32), 6.0))
    heat = sitk.GetImageFromArray(np.clip(blurred / blurred.max(), 0, 1).astype(np.float32))
    heat.CopyInformation(case.image)
    write_volume(heat, folder / "heatmap.nrrd")
    return ct, case, folder


@pytest.fixture
def headless():
    with new_scene() as fresh:
        yield fresh


def _wait(logic, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while logic.running and time.monotonic() < deadline:
        logic.poll()
        time.sleep(0.05)
    logic.poll()


class FakeProcess:
    """Stands in for a `covidct` process: on start, copies ``files`` into the command's -o target, then reports."""

    def __init__(self, files: dict[str, Path] | None, events=(), error: str = ""):
        self.files, self.events, self.error = files or {}, list(events), error
        self.commands: list[list[str]] = []

    def __call__(self, command, env=None, cwd=None):
        self.commands.append(list(command))
        fake = self

        class Running:
            state = ProcessState.NOT_STARTED
            error_message = ""

            def start(self):
                target = Path(command[command.index("-o") + 1])
                folder = target if not target.suffix else target.parent
                folder.mkdir(parents=True, exist_ok=True)
                for name, source in fake.files.items():
                    shutil.copy(source, folder / name)
                self.state = ProcessState.RUNNING

            @property
            def running(self):
                return self.state is ProcessState.RUNNING

            def poll(self):
                if self.state is not ProcessState.RUNNING:
                    return []
                self.state = ProcessState.FAILED if fake.error else ProcessState.SUCCEEDED
                self.error_message = fake.error
                return list(fake.events)

            def cancel(self):
                self.state = ProcessState.CANCELLED

        return Running()


def _analysis_files(demo, tmp_path, classifiers: dict[str, float]) -> dict[str, Path]:
    """An output folder as `covidct analyze` will write it once classifiers ship (report + lungs + lesions + heatmaps)."""
    ct, case, folder = demo
    report = {"input": {"path": str(ct), "size": list(DEMO_SIZE)}, "lungs": {"right_ml": 1.0, "left_ml": 2.0,
              "total_ml": 3.0}, "lesions": None,
              "classifiers": {m: {"probability": p, "label": "COVID-19" if p >= 0.5 else "other",
                                  "heatmap": f"heatmap-{m}.nrrd"} for m, p in classifiers.items()},
              "unavailable": {}}
    (tmp_path / "report.json").write_text(json.dumps(report))
    write_label_map(case.lungs, tmp_path / "lungs.seg.nrrd", LUNG_SEGMENTS)
    files = {"report.json": tmp_path / "report.json", "lungs.seg.nrrd": tmp_path / "lungs.seg.nrrd",
             "lesions.seg.nrrd": folder / "lesions.seg.nrrd"}
    files.update({f"heatmap-{m}.nrrd": folder / "heatmap.nrrd" for m in classifiers})
    return files


# -- Analyze --------------------------------------------------------------------------------------------------------
def test_analyze_runs_in_the_background_on_the_users_volume(demo, headless):
    ct_path, case, _ = demo
    ct = load_volume(headless.scene, ct_path, "patient CT")
    before = (ct.GetMTime(), ct.GetImageData().GetMTime(), array_from_volume(ct).tobytes())
    parameters = AnalyzeParameters.of(headless.scene)
    parameters.inputVolume, parameters.device = ct, "cpu"
    logic = AnalyzeLogic(headless.scene, python=sys.executable)
    logic.start(parameters)
    assert logic.running
    workdir = logic.runner.job.workdir
    seen = []
    while logic.running:
        seen += logic.poll()
        time.sleep(0.05)
    assert logic.state is ProcessState.SUCCEEDED, logic.error_message
    assert [e.stage for e in seen if e.progress == 0.0][:4] == ["load", "lungs", "lesions", "classifiers"]
    assert logic.progress == pytest.approx(1.0) and not workdir.exists()  # temporary copy and outputs removed
    results = logic.results
    assert results.volume is ct and (ct.GetMTime(), ct.GetImageData().GetMTime(),
                                     array_from_volume(ct).tobytes()) == before
    counts = segment_voxel_counts(results.lungs, ct)
    truth = sitk.GetArrayFromImage(case.lungs)
    for label, name in ((1, "right lung"), (2, "left lung")):
        assert counts[name] == pytest.approx((truth == label).sum(), rel=0.1)
    rows = {r.measurement: r.value for r in logic.result_rows()}
    report_voxel_ml = float(np.prod(ct.GetSpacing())) / 1000.0
    assert rows["Right lung volume"] == pytest.approx(counts["right lung"] * report_voxel_ml, rel=1e-6)
    assert results.lungs.GetModifiedSinceRead()  # Slicer's Save will write it (its file was temporary)


def test_analyze_cancel_stops_the_process_and_adds_nothing(headless):
    logic = AnalyzeLogic(headless.scene, python=sys.executable, demo_size=(256, 256, 120))
    before = headless.scene.GetNumberOfNodes()
    logic.start_demo(AnalyzeParameters.of(headless.scene))
    process = logic.runner.job.process
    deadline = time.monotonic() + 60
    while not logic.poll() and time.monotonic() < deadline:  # wait for the first event: the process runs
        time.sleep(0.05)
    logic.cancel()
    assert logic.state is ProcessState.CANCELLED and not logic.running
    assert process.returncode is not None and logic.results is None
    assert headless.scene.GetNumberOfNodes() == before + 1  # only the module's parameter node
    assert logic.runner.job.workdir is None


def test_analyze_failure_is_one_clear_message(headless, demo):
    ct = load_volume(headless.scene, demo[0])
    parameters = AnalyzeParameters.of(headless.scene)
    parameters.inputVolume = ct
    fake = FakeProcess(None, error="input.nrrd: the CT has 2 slices; at least 8 are needed")
    logic = AnalyzeLogic(headless.scene, process_factory=fake)
    nodes = headless.scene.GetNumberOfNodes()
    logic.start(parameters)
    _wait(logic)
    assert logic.state is ProcessState.FAILED
    assert logic.error_message == "input.nrrd: the CT has 2 slices; at least 8 are needed"
    assert logic.results is None and headless.scene.GetNumberOfNodes() == nodes


def test_analyze_unloadable_output_turns_into_a_failure(headless, demo, tmp_path):
    ct = load_volume(headless.scene, demo[0])
    parameters = AnalyzeParameters.of(headless.scene)
    parameters.inputVolume = ct
    (tmp_path / "lungs.seg.nrrd").write_text("not a segmentation")
    logic = AnalyzeLogic(headless.scene, process_factory=FakeProcess({"lungs.seg.nrrd": tmp_path / "lungs.seg.nrrd"}))
    logic.start(parameters)
    _wait(logic)
    assert logic.state is ProcessState.FAILED and "report.json: analysis report not found" in logic.error_message


def test_analyze_heatmap_toggles_opacity_threshold_and_rerun(headless, demo, tmp_path):
    ct = load_volume(headless.scene, demo[0])
    renderer = headless.slice_renderer()
    parameters = AnalyzeParameters.of(headless.scene)
    parameters.inputVolume, parameters.heatmapOpacity = ct, 0.3
    files = _analysis_files(demo, tmp_path, {"decovnet": 0.9, "da-cmil": 0.2})
    events = [ProgressEvent("load", 1.0, ""), ProgressEvent("report", 1.0, "")]
    logic = AnalyzeLogic(headless.scene, process_factory=FakeProcess(files, events))
    logic.start(parameters)
    _wait(logic)
    assert logic.state is ProcessState.SUCCEEDED and logic.progress == pytest.approx(1.0)
    assert logic.heatmap_models() == ["decovnet", "da-cmil"]
    first = logic.results.heatmaps["decovnet"]
    assert renderer.composite.GetForegroundVolumeID() == first.GetID()
    assert renderer.composite.GetForegroundOpacity() == pytest.approx(0.3)
    logic.set_heatmap_visible("da-cmil", True)  # one foreground layer: showing one hides the other
    assert logic.heatmap_visible("da-cmil") and not logic.heatmap_visible("decovnet")
    logic.set_heatmap_opacity("da-cmil", 0.7)
    assert renderer.composite.GetForegroundOpacity() == pytest.approx(0.7)
    logic.set_heatmap_visible("da-cmil", False)
    assert renderer.composite.GetForegroundVolumeID() is None
    logic.set_heatmap_threshold(0.8)
    assert all(n.GetDisplayNode().GetLowerThreshold() == pytest.approx(0.8) for n in logic.results.heatmaps.values())
    rows = {r.measurement: (r.value, r.note) for r in logic.result_rows()}
    assert rows["P(COVID-19), decovnet"] == (pytest.approx(0.9), "COVID-19")

    old = [n.GetID() for n in logic.results.nodes()]
    logic.start(parameters)  # a second analysis replaces the first one's nodes
    _wait(logic)
    assert all(headless.scene.GetNodeByID(i) is None for i in old)
    assert ct.GetScene() is headless.scene


def test_models_argument():
    assert models_argument((), ["a", "b"]) == "all"
    assert models_argument(("a", "b"), ["a", "b"]) == "all"
    assert models_argument(("b", "x"), ["a", "b"]) == "b"
    assert models_argument(("x",), []) == "all"


# -- Lung segmentation ----------------------------------------------------------------------------------------------
def test_lung_segmentation_logic_real_run(headless, demo):
    ct_path, case, _ = demo
    ct = load_volume(headless.scene, ct_path)
    parameters = LungSegmentationParameters.of(headless.scene)
    parameters.inputVolume = ct
    logic = LungSegmentationLogic(headless.scene, python=sys.executable)
    logic.start(parameters)
    _wait(logic)
    assert logic.state is ProcessState.SUCCEEDED, logic.error_message
    node = logic.segmentation
    assert node.GetName() == f"{ct.GetName()} lungs"
    truth = sitk.GetArrayFromImage(case.lungs)
    voxel_ml = float(np.prod(case.image.GetSpacing())) / 1000.0
    assert logic.volumes_ml["right lung"] == pytest.approx((truth == 1).sum() * voxel_ml, rel=0.1)
    assert logic.volumes_ml["left lung"] == pytest.approx((truth == 2).sum() * voxel_ml, rel=0.1)
    assert logic.volumes_ml["both lungs"] == pytest.approx(logic.volumes_ml["right lung"] + logic.volumes_ml["left lung"])


# -- Lesion segmentation --------------------------------------------------------------------------------------------
def test_lesion_pseudo_mask_real_run_loads_or_refuses_clearly(headless, demo):
    from CovidCTAnalysis.models.registry import load_registry

    parameters = LesionSegmentationParameters.of(headless.scene)
    parameters.inputVolume = load_volume(headless.scene, demo[0])
    logic = LesionSegmentationLogic(headless.scene, python=sys.executable)
    logic.start_pseudo_mask(parameters)
    _wait(logic)
    if "lesions-unet" not in load_registry().entries:
        assert logic.state is ProcessState.FAILED
        assert logic.error_message == "model lesions-unet is not available in this version"
        assert parameters.segmentation is None
    else:
        assert logic.state is ProcessState.SUCCEEDED, logic.error_message
        names = [parameters.segmentation.GetSegmentation().GetNthSegment(i).GetName()
                 for i in range(parameters.segmentation.GetSegmentation().GetNumberOfSegments())]
        assert set(names) <= {s.name for s in LESION_SEGMENTS} and names


def test_lesion_pseudo_mask_loads_segments_and_points(headless, demo):
    ct_path, case, folder = demo
    parameters = LesionSegmentationParameters.of(headless.scene)
    parameters.inputVolume = load_volume(headless.scene, ct_path)
    fake = FakeProcess({"lesions.seg.nrrd": folder / "lesions.seg.nrrd"})  # stands in for the lesion model
    logic = LesionSegmentationLogic(headless.scene, process_factory=fake)
    logic.start_pseudo_mask(parameters)
    _wait(logic)
    assert logic.state is ProcessState.SUCCEEDED
    assert fake.commands[0][3:5] == ["segment-lesions", fake.commands[0][4]] and "--device" in fake.commands[0]
    node = parameters.segmentation
    assert node.GetName().endswith("lesion pseudo-mask") and node.GetModifiedSinceRead()
    summary = {name: (ml, count) for name, ml, count in lesion_summary(node, parameters.inputVolume)}
    truth = json.loads(json.dumps([l.__dict__ for l in case.lesion_list]))
    for label, name in ((1, "ground-glass opacity"), (2, "consolidation")):
        expected = sum(l["volume_ml"] for l in truth if l["label"] == label)
        assert summary[name][0] == pytest.approx(expected, rel=1e-6)
        assert summary[name][1] >= 1  # connected lesions (a truth lesion cut by a vessel counts twice)
    assert logic.markups.GetNumberOfControlPoints() >= len(summary)


def test_lesion_correction_round_trip(headless, demo, tmp_path):
    ct_path, case, folder = demo
    parameters = LesionSegmentationParameters.of(headless.scene)
    parameters.inputVolume = load_volume(headless.scene, ct_path)
    logic = LesionSegmentationLogic(headless.scene)
    with pytest.raises(ValueError, match="generate or import"):
        logic.prepare_segment_editor(parameters)
    logic.load_mask(parameters, folder / "lesions.seg.nrrd")
    editor = logic.prepare_segment_editor(parameters)
    assert editor.GetSegmentationNode() is parameters.segmentation or \
        editor.GetSegmentationNode().GetID() == parameters.segmentation.GetID()
    assert editor.GetSourceVolumeNode().GetID() == parameters.inputVolume.GetID()
    assert editor.GetSelectedSegmentID() == parameters.segmentation.GetSegmentation().GetNthSegmentID(0)
    with pytest.raises(ValueError, match="dataset folder"):
        logic.save_correction(parameters)
    parameters.datasetFolder, parameters.caseId = str(tmp_path / "data"), "case_7"
    image, label = logic.save_correction(parameters)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(label))),
                                  sitk.GetArrayFromImage(case.lesions))
    assert (image, label) == (tmp_path / "data" / "images" / "case_7.nii.gz", tmp_path / "data" / "masks" / "case_7.nii.gz")


# -- Classifiers ----------------------------------------------------------------------------------------------------
def test_the_panel_lists_every_classifier_from_the_table_and_the_registry():
    from CovidCTAnalysis.classifiers import runnable_classifiers
    from CovidCTAnalysis.models.registry import CONTRACT_MODELS

    choices = classifier_choices()
    reserved = [name for name, task in CONTRACT_MODELS.items() if task == "classification"]
    assert sorted(name for name, _ in choices) == sorted(reserved)
    shipped = [info.name for info in runnable_classifiers()]
    assert [name for name, info in choices if info is not None] == shipped and shipped
    for name, info in choices:
        logic = ClassifierLogic(None, name)
        assert logic.available() == (info is not None)
        if info is not None:  # title, paper and explanation come from the registry entry
            assert info.title in logic.description() and info.paper in logic.description()
            assert info.explanation and info.explanation in logic.description()
        else:
            assert "not available" in logic.description()


def test_unregistered_classifier_refuses_to_run(headless, demo, monkeypatch):
    """A reserved classifier this installation does not ship (here every one, as in a version that ships none)."""
    import CovidCTClassifiersLib.ClassifierLogic as module

    names = [name for name, _ in classifier_choices()]
    monkeypatch.setattr(module, "classifier_choices", lambda: [(name, None) for name in names])
    parameters = ClassifierParameters.of(headless.scene)
    parameters.inputVolume = load_volume(headless.scene, demo[0])
    for name in names:
        with pytest.raises(ValueError, match=f"model {name} is not available in this version"):
            ClassifierLogic(headless.scene, name).start(parameters)


def _lobe_patch_files(demo, tmp_path) -> dict[str, Path]:
    """An analysis folder with lobe-patch's segmentations: its lung regions (the demo's lungs) and infection."""
    from CovidCTAnalysis.labels import LOBE_REGION_SEGMENTS, PATCH_INFECTION_SEGMENT

    _, case, _ = demo
    files = _analysis_files(demo, tmp_path, {"lobe-patch": 0.7})
    write_label_map(case.lungs, tmp_path / "lobes-lobe-patch.seg.nrrd", LOBE_REGION_SEGMENTS)
    write_label_map(sitk.Cast(case.lesions > 0, sitk.sitkUInt8), tmp_path / "infected-lobe-patch.seg.nrrd",
                    (PATCH_INFECTION_SEGMENT,))
    report = json.loads(files["report.json"].read_text(encoding="utf-8"))
    report["classifiers"]["lobe-patch"].update({"lobes_segmentation": "lobes-lobe-patch.seg.nrrd",
                                                "infected_segmentation": "infected-lobe-patch.seg.nrrd",
                                                "percent_infected": 4.5})
    files["report.json"].write_text(json.dumps(report))
    files.update({name: tmp_path / name for name in ("lobes-lobe-patch.seg.nrrd", "infected-lobe-patch.seg.nrrd")})
    return files


def test_classifier_logic_adds_a_classifiers_segmentations(headless, demo, tmp_path):
    """lobe-patch's k-means lung regions and infected region become segmentation nodes, removed with the result."""
    _, case, _ = demo
    parameters = ClassifierParameters.of(headless.scene)
    parameters.inputVolume = load_volume(headless.scene, demo[0])
    logic = ClassifierLogic(headless.scene, "lobe-patch", process_factory=FakeProcess(_lobe_patch_files(demo,
                                                                                                      tmp_path)))
    logic.start(parameters)
    _wait(logic)
    assert logic.state is ProcessState.SUCCEEDED, logic.error_message
    assert set(logic.segmentations) == {"lobes", "infected"}
    counts = segment_voxel_counts(logic.segmentations["lobes"], parameters.inputVolume)
    truth = sitk.GetArrayFromImage(case.lungs)
    assert counts == {"right k-means lung region": int((truth == 1).sum()),
                      "left k-means lung region": int((truth == 2).sum())}
    assert ("percent infected", "4.5") in logic.result_rows()
    nodes = list(logic.segmentations.values())
    logic.clear()
    assert logic.segmentations == {} and all(node.GetScene() is None for node in nodes)


def test_analyze_adds_a_classifiers_segmentations_to_its_results(headless, demo, tmp_path):
    parameters = AnalyzeParameters.of(headless.scene)
    parameters.inputVolume = load_volume(headless.scene, demo[0], "patient CT")
    logic = AnalyzeLogic(headless.scene, process_factory=FakeProcess(_lobe_patch_files(demo, tmp_path)))
    logic.start(parameters)
    _wait(logic)
    assert logic.state is ProcessState.SUCCEEDED, logic.error_message
    found = logic.results.segmentations
    assert set(found) == {"lobe-patch lobes", "lobe-patch infected"}
    assert all(node in logic.results.nodes() for node in found.values())


def test_classifier_logic_shows_result_and_heatmap(headless, demo, tmp_path):
    files = _analysis_files(demo, tmp_path, {"decovnet": 0.83})
    report = json.loads(files["report.json"].read_text(encoding="utf-8"))
    report["classifiers"]["decovnet"]["lesion_hit"] = True  # a model-specific value the report may add
    files["report.json"].write_text(json.dumps(report))
    parameters = ClassifierParameters.of(headless.scene)
    parameters.inputVolume = load_volume(headless.scene, demo[0])
    parameters.heatmapOpacity = 0.55
    renderer = headless.slice_renderer()
    fake = FakeProcess(files)
    logic = ClassifierLogic(headless.scene, "decovnet", process_factory=fake)
    logic.start(parameters)
    _wait(logic)
    assert logic.state is ProcessState.SUCCEEDED, logic.error_message
    command = fake.commands[0]
    assert command[command.index("--models") + 1] == "decovnet" and command[3] == "analyze"
    assert logic.result_rows() == [("P(COVID-19)", "0.830"), ("Label", "COVID-19"), ("lesion hit", "True")]
    assert logic.heatmap.GetAttribute(heatmaps.MODEL_ATTRIBUTE) == "decovnet"
    assert renderer.composite.GetForegroundVolumeID() == logic.heatmap.GetID()
    assert renderer.composite.GetForegroundOpacity() == pytest.approx(0.55)


def test_after_analyze_the_views_show_the_results(headless, demo, tmp_path):
    """Slice layers and fit, 3-D display and camera, the table view and the subject hierarchy after Analyze."""
    import slicer

    ct = load_volume(headless.scene, demo[0], "patient CT")
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(headless.scene)
    study = hierarchy.CreateStudyItem(hierarchy.CreateSubjectItem(hierarchy.GetSceneItemID(), "patient"), "study")
    hierarchy.SetItemParent(hierarchy.GetItemByDataNode(ct) or hierarchy.CreateItem(study, ct), study)
    renderer = headless.slice_renderer()
    _, camera = headless.three_d_view()
    field_of_view_before = renderer.slice_node.GetFieldOfView()[0]
    parameters = AnalyzeParameters.of(headless.scene)
    parameters.inputVolume, parameters.heatmapOpacity, parameters.show3D = ct, 0.35, True
    files = _analysis_files(demo, tmp_path, {"decovnet": 0.9})
    logic = AnalyzeLogic(headless.scene, process_factory=FakeProcess(files), app_logic=headless.app_logic)
    logic.start(parameters)
    _wait(logic)
    assert logic.state is ProcessState.SUCCEEDED, logic.error_message
    results, request = logic.results, logic.view_request

    # slice views: CT under the heatmap, field of view fitted to the CT
    assert renderer.composite.GetBackgroundVolumeID() == ct.GetID()
    assert renderer.composite.GetForegroundVolumeID() == results.heatmaps["decovnet"].GetID()
    assert renderer.composite.GetForegroundOpacity() == pytest.approx(0.35)
    assert request.slice_views_fitted == 1 and request.foreground is results.heatmaps["decovnet"]
    bounds = [0.0] * 6
    ct.GetRASBounds(bounds)
    extent = max(bounds[1] - bounds[0], bounds[3] - bounds[2])
    assert renderer.slice_node.GetFieldOfView()[0] == pytest.approx(extent, rel=0.05)
    assert field_of_view_before != pytest.approx(extent, rel=0.05)

    # 3-D: lungs semi-transparent, lesions opaque, both closed surfaces; the camera looks at the lungs' centre
    for node, opacity in ((results.lungs, 0.3), (results.lesions, 1.0)):
        display = node.GetDisplayNode()
        assert display.GetVisibility() and display.GetVisibility3D()
        assert display.GetOpacity3D() == pytest.approx(opacity)
        assert display.GetPreferredDisplayRepresentationName3D() == "Closed surface"
        assert node.GetSegmentation().ContainsRepresentation("Closed surface")
    results.lungs.GetRASBounds(bounds)
    centre = [(bounds[2 * i] + bounds[2 * i + 1]) / 2 for i in range(3)]
    assert camera.GetFocalPoint() == pytest.approx(centre, abs=1e-3)
    position = np.array(camera.GetPosition()) - np.array(centre)
    assert position[1] > max(bounds[3] - bounds[2], 1.0) and abs(position[0]) < 1e-6  # in front of the patient

    # the measurements in a table view
    assert headless.app_logic.GetSelectionNode().GetActiveTableID() == results.table.GetID()
    layout = headless.scene.GetFirstNodeByClass("vtkMRMLLayoutNode")
    assert layout.GetViewArrangement() == slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpTableView

    # the results in one folder under the CT's study
    folder = request.folder_item
    assert hierarchy.GetItemParent(folder) == study and "patient CT" in hierarchy.GetItemName(folder)
    for node in results.nodes():
        assert hierarchy.GetItemParent(hierarchy.GetItemByDataNode(node)) == folder, node.GetName()

    logic.start(parameters)  # a new analysis replaces the old one's nodes and folder
    _wait(logic)
    assert hierarchy.GetItemName(folder) == "" and logic.view_request.folder_item != folder


def test_classifier_logic_adds_the_attention_per_slice_as_a_bar_chart(headless, demo, tmp_path):
    from CovidCTAnalysis.mrml.plots import chart_series

    files = _analysis_files(demo, tmp_path, {"decovnet": 0.7})
    report = json.loads(files["report.json"].read_text(encoding="utf-8"))
    report["classifiers"]["decovnet"].update({"slice_attention": {"2": 0.25, "5": 0.75}, "top_slices": [5, 2]})
    files["report.json"].write_text(json.dumps(report))
    parameters = ClassifierParameters.of(headless.scene)
    parameters.inputVolume = load_volume(headless.scene, demo[0])
    logic = ClassifierLogic(headless.scene, "decovnet", process_factory=FakeProcess(files))
    logic.start(parameters)
    _wait(logic)
    assert logic.state is ProcessState.SUCCEEDED, logic.error_message
    chart = logic.attention_chart()
    table = logic.attention[0].GetTable()
    matrix = ijk_to_ras(parameters.inputVolume)  # report.json's slices 2 and 5 at their z (mm), as Slicer places them
    z_mm = [float((matrix @ np.array([0.0, 0.0, k, 1.0]))[2]) for k in (2, 5)]
    assert [table.GetValue(i, 0).ToDouble() for i in range(2)] == pytest.approx(z_mm)
    (series,) = chart_series(chart)
    logic.clear()
    assert logic.attention_chart() is None
    assert series.GetScene() is None and chart.GetScene() is None  # removed with the result


def test_analyze_a_file_runs_on_the_file_itself_and_loads_onto_the_ct_shown(headless, demo, tmp_path):
    """start_file (the browser app's Analyze): the command names the file the user opened, no copy is written, and
    the results go onto the volume node that shows it."""
    ct = load_volume(headless.scene, demo[0])
    parameters = AnalyzeParameters.of(headless.scene)
    parameters.inputVolume = ct
    fake = FakeProcess(_analysis_files(demo, tmp_path, {"decovnet": 0.9}))
    logic = AnalyzeLogic(headless.scene, process_factory=fake)
    logic.start_file(parameters, demo[0])
    _wait(logic)
    assert logic.state is ProcessState.SUCCEEDED, logic.error_message
    command = fake.commands[0]
    assert command[command.index("analyze") + 1] == str(demo[0]) and "--demo" not in command
    assert logic.results.volume is ct and logic.results.lesions is not None
