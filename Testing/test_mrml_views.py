"""The view helpers one by one on a slicer-core scene (the whole after-Analyze state is tested through the Analyze
logic in test_slicer_modules_logic.py): layouts that already show a table stay, a CT without a study gets its
folder under the scene, slice views are fitted only through an application logic, 3-D opacities."""

from __future__ import annotations

import pytest

pytest.importorskip("slicer")

import slicer  # noqa: E402

from CovidCTAnalysis.demo import make_demo_ct, write_demo_case  # noqa: E402
from CovidCTAnalysis.io import write_label_map  # noqa: E402
from CovidCTAnalysis.labels import LUNG_SEGMENTS  # noqa: E402
from CovidCTAnalysis.mrml import views  # noqa: E402
from CovidCTAnalysis.mrml.scene import new_scene  # noqa: E402
from CovidCTAnalysis.mrml.segmentations import load_segmentation  # noqa: E402
from CovidCTAnalysis.mrml.tables import report_table  # noqa: E402
from CovidCTAnalysis.mrml.volumes import load_volume  # noqa: E402

pytestmark = pytest.mark.mrml


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("views")
    case = make_demo_ct(size=(64, 64, 24), seed=5)
    return write_demo_case(case, folder), write_label_map(case.lungs, folder / "lungs.seg.nrrd", LUNG_SEGMENTS)


@pytest.fixture
def scene_with_ct(files):
    with new_scene() as headless:
        ct = load_volume(headless.scene, files[0], "ct")
        yield headless, ct, load_segmentation(headless.scene, files[1], LUNG_SEGMENTS, name="lungs",
                                              reference_volume=ct)


def test_a_layout_with_a_table_view_is_kept(scene_with_ct):
    headless, _, _ = scene_with_ct
    layout = headless.scene.GetFirstNodeByClass("vtkMRMLLayoutNode")
    layout.SetViewArrangement(slicer.vtkMRMLLayoutNode.SlicerLayout3DTableView)
    table = report_table(headless.scene, {"lungs": {"right_ml": 1.0, "left_ml": 2.0, "total_ml": 3.0}})
    views.show_table(headless.scene, table, headless.app_logic)
    assert layout.GetViewArrangement() == slicer.vtkMRMLLayoutNode.SlicerLayout3DTableView
    assert headless.app_logic.GetSelectionNode().GetActiveTableID() == table.GetID()


def test_a_ct_without_study_gets_its_folder_under_the_scene(scene_with_ct):
    headless, ct, lungs = scene_with_ct
    folder = views.file_under_study(headless.scene, ct, [lungs])
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(headless.scene)
    assert hierarchy.GetItemParent(folder) == hierarchy.GetSceneItemID()
    assert hierarchy.GetItemName(folder) == "ct COVID-19 CT analysis"
    assert hierarchy.GetItemParent(hierarchy.GetItemByDataNode(lungs)) == folder
    views.remove_folder(headless.scene, folder)
    assert hierarchy.GetItemName(folder) == ""


def test_slice_views_are_fitted_only_through_an_application_logic(scene_with_ct):
    headless, ct, _ = scene_with_ct
    renderer = headless.slice_renderer()
    assert views.show_slices(headless.scene, ct) == 0
    assert renderer.composite.GetBackgroundVolumeID() == ct.GetID()
    assert renderer.composite.GetForegroundVolumeID() is None
    before = renderer.slice_node.GetFieldOfView()[0]
    assert views.show_slices(headless.scene, ct, app_logic=headless.app_logic) == 1
    assert renderer.slice_node.GetFieldOfView()[0] != pytest.approx(before)


def test_lungs_are_see_through_and_cameras_look_at_them(scene_with_ct):
    headless, _, lungs = scene_with_ct
    _, camera = headless.three_d_view()
    views.show_in_3d_views(lungs)
    assert lungs.GetDisplayNode().GetOpacity3D() == pytest.approx(views.LUNG_OPACITY_3D)
    assert lungs.GetSegmentation().ContainsRepresentation("Closed surface")
    focus = views.focus_cameras(headless.scene, lungs)
    assert camera.GetFocalPoint() == pytest.approx(focus)
    assert camera.GetPosition()[1] > focus[1]  # anterior of the lungs


def test_a_classifiers_lung_regions_do_not_hide_the_lesions_in_3d(scene_with_ct, files, tmp_path):
    """lobe-patch's lung regions are copies of the lungs: opaque, they had wrapped every lesion in 3-D. They are
    see-through and hidden until switched on; its infected region is shown opaque like the lesions."""
    import SimpleITK as sitk

    from CovidCTAnalysis.labels import CLASSIFIER_SEGMENTS
    from CovidCTAnalysis.mrml.results import AnalysisNodes, load_classifier_segmentation

    headless, ct, lungs = scene_with_ct
    right_lung = sitk.Cast(sitk.ReadImage(str(files[1])) == 1, sitk.sitkUInt8)
    infected_file = write_label_map(right_lung, tmp_path / "infected.seg.nrrd", CLASSIFIER_SEGMENTS["infected"])
    lobes = load_classifier_segmentation(headless.scene, files[1], "lobes", ct, "lobe-patch")
    infected = load_classifier_segmentation(headless.scene, infected_file, "infected", ct, "lobe-patch")
    result = AnalysisNodes(outdir=tmp_path, report={}, volume=ct, lungs=lungs,
                           segmentations={"lobe-patch lobes": lobes, "lobe-patch infected": infected})
    views.show_analysis(headless.scene, result)
    assert lungs.GetDisplayNode().GetOpacity3D() == pytest.approx(views.LUNG_OPACITY_3D)
    regions = lobes.GetDisplayNode()
    assert not regions.GetVisibility3D() and regions.GetOpacity3D() == pytest.approx(views.LUNG_OPACITY_3D)
    assert regions.GetVisibility() and regions.GetVisibility2D(), "the regions stay in the slice views"
    assert lobes.GetSegmentation().ContainsRepresentation("Closed surface"), "ready when switched on"
    shown = infected.GetDisplayNode()
    assert shown.GetVisibility3D() and shown.GetOpacity3D() == pytest.approx(views.LESION_OPACITY_3D)


def test_slice_views_go_through_the_largest_lesion(scene_with_ct, tmp_path):
    """After the fit, each slice view moves along its normal to the largest lesion's centre, so the axial, coronal
    and sagittal views all show it (the CT's middle planes may hold no lesion); the in-plane fit stays."""
    from CovidCTAnalysis.mrml.markups import LesionPoint, add_lesion_markups
    from CovidCTAnalysis.mrml.results import AnalysisNodes

    headless, ct, lungs = scene_with_ct
    views_ = {name: headless.slice_renderer(name, orientation)
              for name, orientation in (("Red", "Axial"), ("Green", "Coronal"), ("Yellow", "Sagittal"))}
    largest, small = (12.0, -20.0, 30.0), (-40.0, 5.0, -10.0)
    # in lesion_points' order: largest first
    markups = add_lesion_markups(headless.scene, [LesionPoint(1, "ground-glass opacity", largest, 3.0, "right"),
                                                  LesionPoint(1, "ground-glass opacity", small, 0.2, "left")])
    result = AnalysisNodes(outdir=tmp_path, report={}, volume=ct, lungs=lungs, markups=markups)
    request = views.show_analysis(headless.scene, result, headless.app_logic)
    assert request.lesion_ras == pytest.approx(largest)
    for name, renderer in views_.items():  # the point lies in each view's plane
        to_ras = renderer.slice_node.GetSliceToRAS()
        normal = [to_ras.GetElement(i, 2) for i in range(3)]
        origin = [to_ras.GetElement(i, 3) for i in range(3)]
        distance = sum(n * (p - o) for n, p, o in zip(normal, largest, origin))
        assert abs(distance) < 1.0, f"{name} view is {distance:.1f} mm from the largest lesion"
    bounds = [0.0] * 6
    ct.GetRASBounds(bounds)
    assert views_["Red"].slice_node.GetFieldOfView()[0] == pytest.approx(
        max(bounds[1] - bounds[0], bounds[3] - bounds[2]), rel=0.05), "the in-plane fit is kept"

    no_lesion = AnalysisNodes(outdir=tmp_path, report={}, volume=ct, lungs=lungs)
    assert views.show_analysis(headless.scene, no_lesion, headless.app_logic).lesion_ras is None
