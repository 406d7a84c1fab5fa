"""Four fixes to what the Analyze module (and the results loader under it) puts in the scene.

1. A new AnalyzeLogic (the module reloaded, a second front end) replaces the results an earlier one left in the scene
   for the same CT, as one logic replaces its own, instead of adding a second set beside them.
2. The output folder of a 2-D picture (`covidct analyze picture.png -o out`) loads: the CT as the analysis read it
   (HU on the analysis grid), its segmentations and heatmaps on that grid.
3. A heatmap-*.nrrd that report.json does not name (no model of the analysis) is skipped, with a note.
4. The attention-per-slice table gives each slice's z in mm (the axial view's slice offset) and its name as
   report.html writes it, not its index counted from the feet.
"""

from __future__ import annotations

import json
import shutil
import math
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("slicer")

import SimpleITK as sitk  # noqa: E402

from CovidCTAnalysis.demo import make_demo_ct, write_demo_case  # noqa: E402
from CovidCTAnalysis.io import write_label_map, write_volume  # noqa: E402
from CovidCTAnalysis.labels import LESION_SEGMENTS, LUNG_SEGMENTS  # noqa: E402
from CovidCTAnalysis.models.registry import load_registry  # noqa: E402
from CovidCTAnalysis.mrml.process import ProcessState  # noqa: E402
from CovidCTAnalysis.mrml.results import ANALYSIS_ATTRIBUTE, load_analysis  # noqa: E402
from CovidCTAnalysis.mrml.segmentations import segment_voxel_counts  # noqa: E402
from CovidCTAnalysis.mrml.tables import table_rows  # noqa: E402
from CovidCTAnalysis.mrml.volumes import array_from_volume, geometry, ijk_to_ras, load_volume  # noqa: E402

pytestmark = pytest.mark.mrml

# the Slicer modules on sys.path, the stand-in for a `covidct` process, and the scene fixture
from test_slicer_modules_logic import FakeProcess, _wait, headless  # noqa: E402,F401

from CovidCTAnalyzeLib.AnalyzeLogic import AnalyzeLogic  # noqa: E402
from CovidCTAnalyzeLib.Parameters import AnalyzeParameters  # noqa: E402
from CovidCTClassifiersLib.ClassifierLogic import ClassifierLogic  # noqa: E402
from CovidCTClassifiersLib.Parameters import ClassifierParameters  # noqa: E402

DEMO_SIZE = (64, 64, 32)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo CT with lungs, lesions and a 0..1 heatmap on its grid."""
    folder = tmp_path_factory.mktemp("demo")
    case = make_demo_ct(size=DEMO_SIZE, seed=5)
    ct = write_demo_case(case, folder)
    write_label_map(case.lungs, folder / "lungs.seg.nrrd", LUNG_SEGMENTS)
    write_label_map(case.lesions, folder / "lesions.seg.nrrd", LESION_SEGMENTS)
    write_volume(sitk.Cast(case.lesions > 0, sitk.sitkFloat32), folder / "heatmap.nrrd")
    return ct, folder


def _outputs(demo, tmp_path, extra_heatmaps=(), with_ct: bool = False, **classifier) -> dict[str, Path]:
    """An output folder of `covidct analyze --models decovnet` (report, lungs, lesions, decovnet's heatmap), plus
    heatmap files named ``extra_heatmaps`` (the same map) that the report does not name."""
    ct, folder = demo
    report = {"input": {"path": str(ct), "size": list(DEMO_SIZE)}, "lesions": None, "unavailable": {},
              "lungs": {"right_ml": 1.0, "left_ml": 2.0, "total_ml": 3.0},
              "classifiers": {"decovnet": {"probability": 0.8, "label": "COVID-19", "heatmap": "heatmap-decovnet.nrrd",
                                           **classifier}}}
    (tmp_path / "report.json").write_text(json.dumps(report))
    files = {"report.json": tmp_path / "report.json", "lungs.seg.nrrd": folder / "lungs.seg.nrrd",
             "lesions.seg.nrrd": folder / "lesions.seg.nrrd", "heatmap-decovnet.nrrd": folder / "heatmap.nrrd"}
    files.update({name: folder / "heatmap.nrrd" for name in extra_heatmaps})
    if with_ct:  # a --demo run writes the CT it generated into its output folder, and the truth into its report
        report["demo_truth"] = {"lungs": report["lungs"], "lesions": {"ggo_ml": 0.0, "consolidation_ml": 0.0,
                                                                      "total_ml": 0.0}, "lesion_list": [], "seed": 5}
        (tmp_path / "report.json").write_text(json.dumps(report))
        files[ct.name] = ct
    return files


def _nodes(scene, class_name: str) -> list:
    found = scene.GetNodesByClass(class_name)
    return [found.GetItemAsObject(index) for index in range(found.GetNumberOfItems())]


def _result_nodes(scene) -> list:
    """Every node some analysis put in the scene (segmentations, tables, heatmaps, point lists, charts)."""
    return [node for cls in ("vtkMRMLSegmentationNode", "vtkMRMLTableNode", "vtkMRMLScalarVolumeNode",
                             "vtkMRMLMarkupsFiducialNode", "vtkMRMLPlotChartNode")
            for node in _nodes(scene, cls) if node.GetAttribute(ANALYSIS_ATTRIBUTE)]


# -- 1. a new logic replaces an earlier logic's results -------------------------------------------------------------
def test_a_second_analyze_logic_replaces_the_first_ones_results_for_the_same_ct(headless, demo, tmp_path):
    """The Analyze module reloaded (a new logic) and the CT analysed again: one set of results, the new one; the
    results of another CT stay."""
    import slicer

    scene = headless.scene
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    parameters = AnalyzeParameters.of(scene)
    parameters.inputVolume = ct = load_volume(scene, demo[0], "patient CT")
    first = AnalyzeLogic(scene, process_factory=FakeProcess(_outputs(demo, tmp_path)))
    first.start(parameters)
    _wait(first)
    assert first.state is ProcessState.SUCCEEDED, first.error_message
    old, old_folder = first.results.nodes(), first.view_request.folder_item
    assert old and all(node.GetScene() is scene for node in old)

    second = AnalyzeLogic(scene, process_factory=FakeProcess(_outputs(demo, tmp_path)))  # the module reloaded
    second.start(parameters)
    _wait(second)
    assert second.state is ProcessState.SUCCEEDED, second.error_message
    assert all(node.GetScene() is None for node in old), [n.GetName() for n in old if n.GetScene() is not None]
    assert hierarchy.GetItemName(old_folder) == ""  # the earlier results' folder went with them
    assert ct.GetScene() is scene
    assert {n.GetID() for n in _result_nodes(scene)} <= {n.GetID() for n in second.results.nodes()}
    assert len([n for n in _nodes(scene, "vtkMRMLSegmentationNode") if n.GetName().startswith("lungs")]) == 1
    assert len([n for n in _nodes(scene, "vtkMRMLTableNode") if n.GetName().startswith("measurements")]) == 1

    parameters.inputVolume = load_volume(scene, demo[0], "patient B")
    third = AnalyzeLogic(scene, process_factory=FakeProcess(_outputs(demo, tmp_path)))
    third.start(parameters)
    _wait(third)
    assert third.state is ProcessState.SUCCEEDED, third.error_message
    assert all(node.GetScene() is scene for node in second.results.nodes())  # another CT's results stay
    assert len([n for n in _nodes(scene, "vtkMRMLSegmentationNode") if n.GetName().startswith("lungs")]) == 2


def test_a_second_analyze_logic_replaces_the_first_ones_demo_ct(headless, demo, tmp_path):
    """A demo run of a new logic replaces the demo CT (and results) an earlier logic loaded: one demo CT."""
    scene = headless.scene
    parameters = AnalyzeParameters.of(scene)
    first = AnalyzeLogic(scene, process_factory=FakeProcess(_outputs(demo, tmp_path, with_ct=True)))
    first.start_demo(parameters)
    _wait(first)
    assert first.state is ProcessState.SUCCEEDED, first.error_message
    demo_ct, old = first.results.volume, first.results.nodes()
    second = AnalyzeLogic(scene, process_factory=FakeProcess(_outputs(demo, tmp_path, with_ct=True)))
    second.start_demo(parameters)
    _wait(second)
    assert second.state is ProcessState.SUCCEEDED, second.error_message
    assert demo_ct.GetScene() is None and all(node.GetScene() is None for node in old)
    cts = [n for n in _nodes(scene, "vtkMRMLScalarVolumeNode") if not n.GetAttribute("CovidCTAnalysis.Kind")]
    assert cts == [second.results.volume]

    third = AnalyzeLogic(scene, process_factory=FakeProcess(_outputs(demo, tmp_path)))
    third.start(parameters)  # parameters.inputVolume: the second demo CT, analysed again by a third logic
    _wait(third)
    assert third.state is ProcessState.SUCCEEDED, third.error_message
    assert third.results.volume is cts[0] and cts[0].GetScene() is scene  # the CT analysed stays
    assert [n for n in _nodes(scene, "vtkMRMLScalarVolumeNode") if not n.GetAttribute("CovidCTAnalysis.Kind")] == cts
    assert len([n for n in _nodes(scene, "vtkMRMLTableNode") if n.GetAttribute(ANALYSIS_ATTRIBUTE)]) == 1


# -- 2. a 2-D picture's output folder loads -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def picture_analysis(tmp_path_factory):
    """`covidct analyze slice.png -o out` run in the picture's folder (the report names it by a relative path)."""
    import subprocess

    from PIL import Image

    folder = tmp_path_factory.mktemp("picture")
    case = make_demo_ct(size=(128, 128, 24), seed=3)
    hu = sitk.GetArrayFromImage(case.image)
    z = int(np.argmax((sitk.GetArrayFromImage(case.lesions) > 0).sum((1, 2))))
    Image.fromarray((np.clip((hu[z] + 1350) / 1500, 0, 1) * 255).astype(np.uint8)).save(folder / "slice.png")
    models = "slice-resnet" if "slice-resnet" in load_registry().entries else "all"
    proc = subprocess.run([sys.executable, "-m", "CovidCTAnalysis", "analyze", "slice.png", "-o", "out", "--device",
                           "cpu", "--models", models], cwd=folder, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return folder / "out"


def test_a_2d_pictures_analysis_loads_with_its_ct_on_the_analysis_grid(headless, picture_analysis):
    out = picture_analysis
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["input"]["path"] == "slice.png" and report["input"]["display_windowed"]
    result = load_analysis(headless.scene, out, app_logic=headless.app_logic)
    ct = result.volume
    assert ct.GetName() == "slice" and result.owns_volume
    g = geometry(ct)
    assert list(g.dimensions) == report["input"]["size"]
    assert g.spacing == pytest.approx(report["input"]["spacing_mm"])  # the assumed spacing, not MRML's 1 mm pixels
    values = array_from_volume(ct)
    assert values.min() < -900 and values.max() <= 150 + 1  # HU as the analysis mapped them (lung window)
    assert ct.GetModifiedSinceRead()  # read from a temporary file: Save writes it
    expected_heatmaps = {m for m, r in report["classifiers"].items() if r.get("heatmap")}
    assert expected_heatmaps <= set(result.heatmaps) and result.heatmaps
    for node in result.heatmaps.values():
        assert geometry(node).matches(g)
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "lungs.seg.nrrd")))
    counts = segment_voxel_counts(result.lungs, ct)
    assert counts == {"right lung": int((truth == 1).sum()), "left lung": int((truth == 2).sum())}
    assert counts["right lung"] > 0 and counts["left lung"] > 0
    assert result.notes == []


# -- 3. a heatmap the report does not name is skipped ---------------------------------------------------------------
def test_a_stray_heatmap_is_not_loaded_as_a_models_heatmap(headless, demo, tmp_path):
    """heatmap-mine.nrrd (no model is called so) and heatmap-lobe-patch.nrrd (a model this analysis did not run)
    are not the analysis's: skipped, with a note in the measurements table; decovnet's maps load."""
    scene = headless.scene
    files = _outputs(demo, tmp_path, extra_heatmaps=("heatmap-mine.nrrd", "heatmap-lobe-patch.nrrd",
                                                     "heatmap-decovnet-lrp.nrrd", "heatmap-decovnet-gradcam.nrrd"),
                     heatmaps={"cam": "heatmap-decovnet.nrrd", "lrp": "heatmap-decovnet-lrp.nrrd"})
    out = tmp_path / "out"
    out.mkdir()
    for name, source in files.items():
        (out / name).write_bytes(source.read_bytes())
    result = load_analysis(scene, out, reference_volume=load_volume(scene, demo[0], "patient CT"))
    # the report's maps, then another map of a classifier it lists (a report written without "heatmaps")
    assert list(result.heatmaps) == ["decovnet", "decovnet-gradcam", "decovnet-lrp"]
    assert not any(n.GetName().startswith(("mine", "lobe-patch")) for n in _nodes(scene, "vtkMRMLScalarVolumeNode"))
    assert len(result.notes) == 2 and "heatmap-mine.nrrd not loaded" in result.notes[1]
    assert "heatmap-lobe-patch.nrrd not loaded: model lobe-patch" in result.notes[0]
    notes = [row.note for row in table_rows(result.table) if row.measurement == "Note"]
    assert notes == result.notes


def test_analyze_logic_skips_a_stray_heatmap(headless, demo, tmp_path):
    scene = headless.scene
    parameters = AnalyzeParameters.of(scene)
    parameters.inputVolume = load_volume(scene, demo[0], "patient CT")
    logic = AnalyzeLogic(scene, process_factory=FakeProcess(_outputs(demo, tmp_path, ("heatmap-old-run.nrrd",))))
    logic.start(parameters)
    _wait(logic)
    assert logic.state is ProcessState.SUCCEEDED, logic.error_message
    assert logic.heatmap_models() == ["decovnet"]
    assert any(r.measurement == "Note" and "heatmap-old-run.nrrd" in r.note for r in logic.result_rows())


# -- 4. the attention table names slices by z in mm -----------------------------------------------------------------
N_SLICES, TOP_Z, SLICE_MM = 8, -40.0, 5.0


@pytest.fixture(scope="module")
def flipped_ct(tmp_path_factory) -> Path:
    """A NRRD whose third axis runs from head to feet: file slice k lies at TOP_Z - 5 k mm (report.json's index 0,
    the lowest slice, is the file's last)."""
    yy, xx = np.mgrid[:24, :24] - 11.5
    hu = np.where(yy ** 2 + xx ** 2 < 100, 40.0, -1000.0)
    hu[yy ** 2 + xx ** 2 < 36] = -850.0
    image = sitk.GetImageFromArray(np.repeat(hu[None], N_SLICES, axis=0).astype(np.float32))
    image.SetSpacing((1.5, 1.5, SLICE_MM))
    image.SetOrigin((-17.25, -17.25, TOP_Z))
    image.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, -1))
    path = tmp_path_factory.mktemp("flipped") / "flipped.nrrd"
    sitk.WriteImage(image, str(path))
    return path


def _attention_files(ct: Path, tmp_path) -> dict[str, Path]:
    report = {"input": {"path": str(ct), "size": [24, 24, N_SLICES], "kind": "nrrd"}, "lungs": None, "lesions": None,
              "unavailable": {}, "classifiers": {"decovnet": {"probability": 0.7, "label": "COVID-19",
                                                              "slice_attention": {"1": 0.25, "6": 0.75},
                                                              "top_slices": [6, 1]}}}
    (tmp_path / "report.json").write_text(json.dumps(report))
    return {"report.json": tmp_path / "report.json"}


def _slice_z_in_slicer(volume) -> list[float]:
    """The z (mm) of each slice of ``volume`` as Slicer places it (RAS z = patient z)."""
    matrix = ijk_to_ras(volume)
    return [float((matrix @ np.array([0.0, 0.0, k, 1.0]))[2]) for k in range(volume.GetImageData().GetDimensions()[2])]


def _check_attention_table(table_node, chart, volume) -> None:
    from CovidCTAnalysis.mrml.plots import FILE, INSTANCE, WEIGHT, Z_MM, chart_series

    table = table_node.GetTable()
    z = [table.GetColumnByName(Z_MM).GetValue(i) for i in range(table.GetNumberOfRows())]
    lowest = TOP_Z - SLICE_MM * (N_SLICES - 1)
    assert z == pytest.approx([lowest + SLICE_MM * 1, lowest + SLICE_MM * 6])  # report.json's slices 1 and 6
    slicer_z = _slice_z_in_slicer(volume)
    assert all(min(abs(v - s) for s in slicer_z) < 1e-3 for v in z)  # where the axial view's offset shows them
    assert [table.GetColumnByName(WEIGHT).GetValue(i) for i in range(2)] == pytest.approx([0.25, 0.75])
    assert table.GetColumnByName(INSTANCE) is None and table.GetColumnByName(FILE) is None  # not a DICOM series
    (series,) = chart_series(chart)
    assert series.GetXColumnName() == Z_MM and "z (mm)" in chart.GetXAxisTitle()


def test_analyze_attention_table_gives_z_in_mm(headless, flipped_ct, tmp_path):
    scene = headless.scene
    parameters = AnalyzeParameters.of(scene)
    parameters.inputVolume = ct = load_volume(scene, flipped_ct, "flipped CT")
    logic = AnalyzeLogic(scene, process_factory=FakeProcess(_attention_files(flipped_ct, tmp_path)))
    logic.start(parameters)
    _wait(logic)
    assert logic.state is ProcessState.SUCCEEDED, logic.error_message
    table, chart = logic.results.attention["decovnet"]
    _check_attention_table(table, chart, ct)


def test_classifier_attention_table_gives_z_in_mm(headless, flipped_ct, tmp_path):
    scene = headless.scene
    parameters = ClassifierParameters.of(scene)
    parameters.inputVolume = ct = load_volume(scene, flipped_ct, "flipped CT")
    logic = ClassifierLogic(scene, "decovnet", process_factory=FakeProcess(_attention_files(flipped_ct, tmp_path)))
    logic.start(parameters)
    _wait(logic)
    assert logic.state is ProcessState.SUCCEEDED, logic.error_message
    _check_attention_table(*logic.attention, ct)


def test_attention_without_the_ct_counts_from_the_feet(headless, flipped_ct, tmp_path):
    """The report's CT is gone: the slices can only be counted from the feet, and the column says so."""
    from CovidCTAnalysis.mrml.plots import SLICE

    scene = headless.scene
    ct = load_volume(scene, flipped_ct, "flipped CT")
    _attention_files(tmp_path / "moved.nrrd", tmp_path)
    result = load_analysis(scene, tmp_path, reference_volume=ct, show=False)
    table = result.attention["decovnet"][0].GetTable()
    assert [table.GetColumnByName(SLICE).GetValue(i) for i in range(2)] == [2, 7]
    assert not math.isnan(table.GetColumnByName("attention").GetValue(0))


def test_attention_table_takes_the_reports_slice_positions(headless, flipped_ct, tmp_path):
    """report.json's slice_positions (z, DICOM instance and file, as report.html names the slices) fill the table,
    with no need for the CT file (here gone)."""
    from CovidCTAnalysis.mrml.plots import FILE, INSTANCE, Z_MM

    scene = headless.scene
    ct = load_volume(scene, flipped_ct, "flipped CT")
    files = _attention_files(tmp_path / "gone", tmp_path)
    report = json.loads(files["report.json"].read_text(encoding="utf-8"))
    report["classifiers"]["decovnet"]["slice_positions"] = {
        "1": {"z_mm": -70.0, "dicom_instance": 7, "file": "[removed]_007.dcm"},
        "6": {"z_mm": -45.0, "dicom_instance": 2, "file": "[removed]_002.dcm"}}
    files["report.json"].write_text(json.dumps(report))
    result = load_analysis(scene, tmp_path, reference_volume=ct, show=False)
    table = result.attention["decovnet"][0].GetTable()
    assert [table.GetColumnByName(Z_MM).GetValue(i) for i in range(2)] == [-70.0, -45.0]
    assert [table.GetColumnByName(INSTANCE).GetValue(i) for i in range(2)] == ["7", "2"]
    assert [table.GetColumnByName(FILE).GetValue(i) for i in range(2)] == ["[removed]_007.dcm", "[removed]_002.dcm"]


def test_a_demo_run_keeps_an_analysis_loaded_with_its_own_ct(headless, demo, tmp_path):
    """A folder loaded without a volume node brings its CT (as a demo does) but is no demo: a demo run keeps it."""
    from CovidCTAnalysis.mrml.results import load_analysis

    scene = headless.scene
    ct, folder = demo
    outdir = tmp_path / "loaded"
    outdir.mkdir()
    for name, path in _outputs(demo, tmp_path).items():
        shutil.copy(path, outdir / name)
    loaded = load_analysis(scene, outdir)  # the CT from the report's input path: owned, not a demo
    assert loaded.owns_volume
    (tmp_path / "demo-run").mkdir()
    logic = AnalyzeLogic(scene, process_factory=FakeProcess(_outputs(demo, tmp_path / "demo-run", with_ct=True)))
    logic.start_demo(AnalyzeParameters.of(scene))
    _wait(logic)
    assert logic.state is ProcessState.SUCCEEDED, logic.error_message
    assert loaded.volume.GetScene() is scene and all(node.GetScene() is scene for node in loaded.nodes())
