"""Load the outputs of `covidct analyze` into a scene: the Analyze module's last step, usable without Slicer's GUI.

For an output folder OUT (docs/CONTRACTS.md 'Command line'):

| file | becomes |
|---|---|
| report.json | a table node of the measurements (and the reference to the CT for ``--demo`` runs) |
| lungs.seg.nrrd | segmentation "lungs": segments right lung / left lung, terminology, colours |
| lesions.seg.nrrd (when present) | segmentation "lesions": GGO / consolidation / crazy paving, closed surfaces in 3-D, and a point list of the localized lesions |
| localization-MODEL.seg.nrrd (each the report names) | segmentation "MODEL localized lesion" and a point at its centre (DeCoVNet, seed 002 §II-E) |
| heatmap-MODEL[-METHOD].nrrd (each the report names) | scalar volume "MODEL heatmap", jet colours 0..1, threshold; the first is composited over the CT |
| a classifier's ``slice_attention`` in report.json | table "MODEL attention per slice" and a bar chart of it (``plots``) |

The CT is the volume node the user analyzed (``reference_volume``) and is never modified; without one, the CT file
the report names is loaded (the demo CT of a ``--demo`` run lies in OUT): a NIfTI/NRRD/MHA file as MRML reads it, any
other input (a PNG/JPEG slice, a slice folder, DICOM) as the analysis read it (``io.load_ct`` with the report's
spacing and window), since MRML would read a 2-D picture on a 1 mm pixel grid in display values (or, in slicer-core,
not at all) where the outputs lie on the analysis grid in HU. Every segmentation and heatmap is checked to lie on the
CT's grid. Only the heatmaps report.json names (its classifiers' ``heatmap`` and ``heatmaps``, or
``heatmap-MODEL[-METHOD].nrrd`` of a classifier it lists) are loaded; another ``heatmap-*.nrrd`` in OUT is skipped
with a note (``AnalysisNodes.notes``, a "Note" row of the measurements table and the log).

Every node of one analysis carries the attribute ``ANALYSIS_ATTRIBUTE`` (one id per analysis) and a reference to its
CT (``CT_REFERENCE``), so a later analysis finds the results already in the scene (``analyses_in_scene``), whichever
logic object loaded them (``AnalyzeLogic`` replaces earlier results of the same CT).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import slicer

from ..errors import InputError
from ..labels import CLASSIFIER_SEGMENTS, LESION_SEGMENTS, LOCALIZATION_SEGMENT, LUNG_SEGMENTS
from .heatmaps import DEFAULT_OPACITY, DEFAULT_THRESHOLD, load_heatmap
from .markups import add_lesion_markups, lesion_points
from .plots import attention_plot, chart_series
from .segmentations import label_array, load_segmentation
from .tables import report_table
from .views import ViewRequest, remove_folder, show_analysis
from .volumes import ijk_to_ras, load_volume, remove_with_helpers

LUNG_WINDOW = (1500.0, -600.0)  # width, level in HU
#: CT files MRML's volume reader puts on the grid the analysis used; other inputs are read as the analysis read them
SCENE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".mha", ".mhd")
#: input kinds that carry no spacing (the analysis assumed one, or was given --spacing: the report states it)
NO_SPACING_KINDS = ("slice-2d", "slice-stack")
#: node attribute: the id of the analysis a node belongs to (also on a CT the analysis loaded itself)
ANALYSIS_ATTRIBUTE = "CovidCTAnalysis.Analysis"
#: node attribute, "1" on the nodes of an analysis of a generated demo CT (its report has ``demo_truth``)
DEMO_ATTRIBUTE = "CovidCTAnalysis.Demo"
#: node reference role: from every node of an analysis to the CT it was made for
CT_REFERENCE = "CovidCTAnalysis.AnalysedCT"

logger = logging.getLogger(__name__)


@dataclass
class AnalysisNodes:
    """The nodes one analysis put in the scene (None / empty where the run produced no such output)."""

    outdir: Path
    report: dict
    volume: object
    lungs: object | None = None
    lesions: object | None = None
    heatmaps: dict[str, object] = field(default_factory=dict)
    localizations: dict[str, tuple[object, object]] = field(default_factory=dict)  # model -> (segmentation, points)
    segmentations: dict[str, object] = field(default_factory=dict)  # "MODEL KIND" -> a classifier's other segments
    attention: dict[str, tuple[object, object]] = field(default_factory=dict)  # model -> (table, plot chart)
    table: object | None = None
    markups: object | None = None
    view: ViewRequest | None = None  # how the views were set up (``show=True``)
    owns_volume: bool = False  # the CT was loaded by this analysis (a ``--demo`` run): it goes with the results
    notes: list[str] = field(default_factory=list)  # what the loader left out and why (also rows of ``table``)
    analysis_id: str = ""  # ``ANALYSIS_ATTRIBUTE`` of its nodes

    def nodes(self) -> list:
        """Every node created for this analysis but the CT (see ``owns_volume``), e.g. to file them in a folder."""
        located = [node for pair in self.localizations.values() for node in pair]
        plotted = [node for table, chart in self.attention.values() for node in (table, chart, *chart_series(chart))]
        created = [self.lungs, self.lesions, self.table, self.markups, *self.heatmaps.values(), *located, *plotted,
                   *self.segmentations.values()]
        return [n for n in created if n is not None]

    def mark_unsaved(self) -> None:
        """Flag the created nodes as changed since read, so Slicer's Save writes them (their files were temporary).

        The CT too when this analysis loaded it from its output folder (the demo CT): that file goes with the folder.
        """
        for node in self.nodes() + ([self.volume] if self._volume_read_from_outdir() else []):
            if hasattr(node, "StorableModified"):  # plot charts and series are not storable
                node.StorableModified()

    def _volume_read_from_outdir(self) -> bool:
        storage = self.volume.GetStorageNode() if self.owns_volume else None
        if storage is None or not storage.GetFileName():
            return False
        return Path(storage.GetFileName()).resolve().parent == self.outdir.resolve()


class AnalysedVolume:
    """The volume node a background run was started on, held by node ID until its outputs are loaded.

    The outputs belong to the CT that was analysed, not to whichever volume the panel selects when the run ends;
    ``node()``, called once when the outputs are loaded, refuses (ValueError, nothing loaded) when that CT was removed
    from the scene meanwhile, instead of attaching results to a node that is no longer there.
    """

    def __init__(self, scene, node):
        self.scene = scene
        self.node_id = node.GetID()
        self.name = node.GetName()
        # a closed scene hands out its IDs again (and a scene file brings its own): the ID alone could name another
        # volume, so the node is kept too, until the run ends
        self._node = node

    def node(self):
        expected, self._node = self._node, None  # a CT deleted meanwhile is not kept in memory after the run
        found = self.scene.GetNodeByID(self.node_id)
        if expected is None or found is not expected:
            raise ValueError(f"the volume {self.name} was removed during the run; nothing loaded")
        return found


@contextmanager
def nothing_added_on_failure(scene) -> Iterator[None]:
    """Remove every node added to ``scene`` inside the block when it raises (then the exception goes on).

    Loading outputs adds nodes step by step (a heatmap, its storage and display nodes, the shared colour table, ...);
    a load that fails half-way must leave the scene as it was. Singletons (e.g. the subject hierarchy) stay.
    """
    before = {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}
    try:
        yield
    except BaseException:
        remove_added_nodes(scene, before)
        raise


def remove_added_nodes(scene, before: set) -> None:
    """Remove the nodes whose ID is not in ``before`` (data nodes with their display and storage nodes first)."""
    added = [scene.GetNthNode(i) for i in range(scene.GetNumberOfNodes())]
    added = [node for node in added if node.GetID() not in before and not node.IsSingleton()]
    helpers = [node for node in added if node.IsA("vtkMRMLDisplayNode") or node.IsA("vtkMRMLStorageNode")]
    for node in [*reversed([node for node in added if node not in helpers]), *helpers]:
        remove_with_helpers(scene, node)


def read_report(outdir: str | Path) -> dict:
    path = Path(outdir) / "report.json"
    if not path.is_file():
        raise InputError(path, "analysis report not found (is this an output folder of `covidct analyze`?)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"analysis report is not valid JSON ({exc.msg}, line {exc.lineno})") from None


def _heatmap_key(model: str, method: str, name: str) -> str:
    """The name a heatmap file is known by: MODEL[-METHOD] of heatmap-MODEL[-METHOD].nrrd, else MODEL-METHOD."""
    if name.startswith("heatmap-") and name.endswith(".nrrd"):
        return name[len("heatmap-"):-len(".nrrd")]
    return f"{model}-{method}" if method else model


def heatmap_selection(outdir: Path, report: dict) -> tuple[dict[str, Path], dict[Path, str]]:
    """({name: heatmap file} of the analysis, {other heatmap-*.nrrd in OUT: why it is not loaded}).

    A heatmap belongs to the analysis when report.json names it: a classifier's ``heatmap`` (default
    ``heatmap-MODEL.nrrd``), under the classifier's name, first for every classifier; then the other maps of its
    ``heatmaps`` and any ``heatmap-MODEL-METHOD.nrrd`` of a classifier the report lists (a report without
    ``heatmaps``), in file name order. Any other file (a model this analysis did not run, a name that is no model's)
    is not the analysis's: it is left out, with the reason.
    """
    classifiers = report.get("classifiers") or {}
    found: dict[str, Path] = {}
    for model, result in classifiers.items():
        path = outdir / ((result or {}).get("heatmap") or f"heatmap-{model}.nrrd")
        if path.is_file():
            found[model] = path
    others: dict[str, Path] = {}
    for model, result in classifiers.items():
        for method, name in ((result or {}).get("heatmaps") or {}).items():
            path = outdir / name
            if path.is_file() and path not in found.values():
                others.setdefault(_heatmap_key(model, method, path.name), path)
    skipped: dict[Path, str] = {}
    for path in sorted(outdir.glob("heatmap-*.nrrd")):
        if path in found.values() or path in others.values():
            continue
        key = _heatmap_key("", "", path.name)
        if key in found or key in others:
            named = (found.get(key) or others[key]).name
            skipped[path] = f"report.json names {named} as the heatmap {key}"
        elif any(key.startswith(f"{model}-") for model in classifiers):
            others[key] = path
        else:
            skipped[path] = _not_the_analysis_heatmap(key)
    return {**found, **dict(sorted(others.items(), key=lambda item: item[1].name))}, skipped


def _not_the_analysis_heatmap(key: str) -> str:
    from ..models.registry import CONTRACT_MODELS

    model = next((m for m in sorted(CONTRACT_MODELS, key=len, reverse=True) if key == m or key.startswith(f"{m}-")),
                 None)
    if model is not None:
        return f"model {model} is not among the classifiers of report.json (a file from another run?)"
    return "not a heatmap of a model report.json lists (no known model is called so)"


def heatmap_files(outdir: Path, report: dict) -> dict[str, Path]:
    """{name: heatmap file} of the analysis in OUT (``heatmap_selection``): the classifier's name for its default
    map, MODEL-METHOD for its other maps."""
    return heatmap_selection(outdir, report)[0]


def _input_candidates(outdir: Path, report: dict) -> list[Path]:
    """The analyzed CT's file or folder, where it still is: in OUT (a --demo run writes it there), or the report's
    input path; a relative one (`covidct analyze picture.png -o out`) from where Slicer runs, else beside OUT."""
    named = Path((report.get("input") or {}).get("path", "") or "")
    if not named.name:
        return []
    candidates = [outdir / named.name, named] + ([outdir.parent / named] if not named.is_absolute() else [])
    found: list[Path] = []
    for path in candidates:
        if path.exists() and not any(path.resolve() == seen.resolve() for seen in found):
            found.append(path)
    return found


def read_input_ct(path: Path, report: dict):
    """The CT at ``path`` as the analysis read it (``io.load_ct`` with the --spacing of a source without one and the
    --window of an 8-bit picture, as report.json states them); None when it cannot be read or is another CT now (its
    canonical size is not the report's)."""
    from ..io import load_ct

    source = report.get("input") or {}
    spacing = source.get("spacing_mm") if source.get("kind") in NO_SPACING_KINDS else None
    window = source.get("window") if source.get("display_windowed") else None
    try:
        ct = load_ct(path, spacing=spacing, window=window)
    except InputError as exc:
        logger.warning("%s", exc)
        return None
    if source.get("size") and list(ct.size) != [int(n) for n in source["size"]]:
        logger.warning("%s: size %s is not the analyzed CT's %s", path, list(ct.size), source["size"])
        return None
    return ct


def analysed_ct(outdir: str | Path, report: dict):
    """The analyzed CT (``io.CTVolume``: geometry, DICOM files) from the report's input, or None where it is gone."""
    for path in _input_candidates(Path(outdir), report):
        ct = read_input_ct(path, report)
        if ct is not None:
            return ct
    return None


def attended_slice_positions(entry: dict, report: dict, outdir: str | Path, ct=None) -> dict[int, dict]:
    """{canonical z: {"z_mm", "dicom_instance", "file"}} of the slices in a classifier's ``slice_attention``, as
    report.html names them (``pipeline.report_images.SliceNames.position``): report.json's ``slice_positions`` where
    it gives every one, else computed from the analyzed CT (``ct``, or read from the report's input); {} without it.
    """
    indices = [int(z) for z in entry.get("slice_attention") or {}]
    given = {int(z): where for z, where in (entry.get("slice_positions") or {}).items() if isinstance(where, dict)}
    if indices and all(z in given for z in indices):
        return {z: given[z] for z in indices}
    ct = ct if ct is not None else analysed_ct(outdir, report)
    if ct is None:
        return {}
    from ..pipeline.report_images import SliceNames

    names = SliceNames(ct.image, ct, keep_identifiers="patient" in report)  # file names without identifiers
    return {z: names.position(z) for z in indices if 0 <= z < names.size[2]}


def volume_from_ct(scene, ct, name: str):
    """A scalar volume node of ``ct`` (``io.CTVolume``) on the input's own grid, the grid of the analysis outputs
    (``io.to_input_grid``, as the outputs are written). Read from a temporary file, so it is marked modified: Save
    writes it."""
    from ..io import to_input_grid, write_volume

    folder = Path(tempfile.mkdtemp(prefix="covidct-ct-"))
    try:
        path = write_volume(to_input_grid(ct.image, ct), folder / "ct.nrrd")
        volume = load_volume(scene, path, name=name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    volume.StorableModified()
    return volume


def _load_ct(scene, outdir: Path, report: dict, ct_holder: list | None = None):
    """The analyzed CT as a new volume node (lung window); ``ct_holder`` receives the ``io.CTVolume`` when the CT was
    read through ``io.load_ct``."""
    named = Path((report.get("input") or {}).get("path", "") or "")
    for candidate in _input_candidates(outdir, report):
        if candidate.is_file() and candidate.name.lower().endswith(SCENE_SUFFIXES):
            volume = load_volume(scene, candidate)
        else:  # a picture, a slice folder, DICOM: MRML's reader would not give the analysis grid
            ct = read_input_ct(candidate, report)
            if ct is None:
                continue
            if ct_holder is not None:
                ct_holder.append(ct)
            volume = volume_from_ct(scene, ct, candidate.stem if candidate.is_file() else candidate.name)
        display = volume.GetDisplayNode()
        display.AutoWindowLevelOff()
        display.SetWindowLevel(*LUNG_WINDOW)
        return volume
    raise InputError(named if named.name else outdir,
                     "the analyzed CT cannot be loaded from the report's input path; pass its volume node")


def load_analysis(scene, outdir: str | Path, reference_volume=None, *, closed_surfaces: bool = True,
                  heatmap_threshold: float = DEFAULT_THRESHOLD, heatmap_opacity: float = DEFAULT_OPACITY,
                  show: bool = True, name_prefix: str = "", app_logic=None) -> AnalysisNodes:
    """Create the scene content of one analysis (see the module docstring); returns the created nodes.

    ``show``: set up the views (``views.show_analysis``: the CT with the first heatmap over it in fitted slice views,
    lungs and lesions in 3-D, the table in a table view, the nodes in a folder under the CT's study); ``app_logic``:
    the application logic whose slice views are fitted and whose table selection is propagated. On a bad output
    folder, InputError names the offending file and every node created so far is removed again.
    """
    outdir = Path(outdir)
    report = read_report(outdir)
    created_ct = reference_volume is None
    read: list = []  # the io.CTVolume, when the CT was read as the analysis read it
    with nothing_added_on_failure(scene):
        volume = _load_ct(scene, outdir, report, read) if created_ct else reference_volume
        result = AnalysisNodes(outdir=outdir, report=report, volume=volume, owns_volume=created_ct)
        _populate(scene, result, closed_surfaces, heatmap_threshold, heatmap_opacity, name_prefix,
                  read[0] if read else None)
        if show:
            result.view = show_analysis(scene, result, app_logic, in_3d=closed_surfaces)
        tag_analysis(scene, result)
    return result


def tag_analysis(scene, result: AnalysisNodes) -> None:
    """Mark the nodes of ``result`` (and its folder, and the CT when it owns it) as one analysis of its CT, so that a
    later analysis finds them in the scene (``analyses_in_scene``)."""
    result.analysis_id = result.analysis_id or uuid.uuid4().hex
    for node in result.nodes():
        node.SetAttribute(ANALYSIS_ATTRIBUTE, result.analysis_id)
        if "demo_truth" in result.report:
            node.SetAttribute(DEMO_ATTRIBUTE, "1")
        node.SetNodeReferenceID(CT_REFERENCE, result.volume.GetID())
    if result.owns_volume:
        result.volume.SetAttribute(ANALYSIS_ATTRIBUTE, result.analysis_id)
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    if hierarchy is not None and result.view is not None and result.view.folder_item:
        hierarchy.SetItemAttribute(result.view.folder_item, ANALYSIS_ATTRIBUTE, result.analysis_id)


@dataclass
class FoundAnalysis:
    """The nodes of one analysis found in the scene by their ``ANALYSIS_ATTRIBUTE``."""

    analysis_id: str
    nodes: list  # every node but the CT
    volume: object | None  # the CT they were made for (None when it is gone)
    owns_volume: bool  # the CT was loaded by the analysis (a --demo run)
    demo: bool = False  # an analysis of a generated demo CT (``DEMO_ATTRIBUTE``)


def analyses_in_scene(scene) -> list[FoundAnalysis]:
    """Every analysis whose nodes are in ``scene`` (``tag_analysis``), whichever logic object loaded it."""
    groups: dict[str, list] = {}
    for index in range(scene.GetNumberOfNodes()):
        node = scene.GetNthNode(index)
        tag = node.GetAttribute(ANALYSIS_ATTRIBUTE)
        if tag:
            groups.setdefault(tag, []).append(node)
    found = []
    for tag, nodes in groups.items():
        volume = next((n.GetNodeReference(CT_REFERENCE) for n in nodes if n.GetNodeReference(CT_REFERENCE)), None)
        owned = volume is not None and volume.GetAttribute(ANALYSIS_ATTRIBUTE) == tag
        found.append(FoundAnalysis(tag, [n for n in nodes if n is not volume], volume, owned,
                                   demo=any(n.GetAttribute(DEMO_ATTRIBUTE) == "1" for n in nodes)))
    return found


def remove_found_analysis(scene, found: FoundAnalysis, keep=None) -> None:
    """Remove an analysis found in the scene: its nodes, its folder, and its CT when it loaded it itself (but not
    ``keep``, the CT analysed now, which stays as a CT like any other)."""
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    folders = set()
    if hierarchy is not None:
        for node in found.nodes:
            parent = hierarchy.GetItemParent(hierarchy.GetItemByDataNode(node))
            if parent and hierarchy.GetItemAttribute(parent, ANALYSIS_ATTRIBUTE) == found.analysis_id:
                folders.add(parent)
    owned = [found.volume] if found.owns_volume and found.volume is not keep else []
    for node in found.nodes + owned:
        remove_with_helpers(scene, node)
    if found.owns_volume and found.volume is keep and keep is not None:
        keep.RemoveAttribute(ANALYSIS_ATTRIBUTE)
    for folder in folders:
        remove_folder(scene, folder)


def remove_analysis(scene, result: AnalysisNodes) -> None:
    """Remove the nodes one analysis created (not the CT the user brought, but the CT it loaded itself, see
    ``AnalysisNodes.owns_volume``) and its subject hierarchy folder."""
    for node in result.nodes() + ([result.volume] if result.owns_volume else []):
        remove_with_helpers(scene, node)
    if not result.owns_volume and result.volume is not None and \
            result.volume.GetAttribute(ANALYSIS_ATTRIBUTE) == result.analysis_id:
        result.volume.RemoveAttribute(ANALYSIS_ATTRIBUTE)  # the demo CT analysed again: now a CT like any other
    if result.view is not None:
        remove_folder(scene, result.view.folder_item)


def _populate(scene, result: AnalysisNodes, closed_surfaces, threshold, opacity, prefix, ct=None) -> None:
    """``ct``: the analyzed ``io.CTVolume`` when already read (else read from the report's input when needed)."""
    outdir, volume = result.outdir, result.volume
    lungs_file = outdir / "lungs.seg.nrrd"
    if lungs_file.is_file():
        result.lungs = load_segmentation(scene, lungs_file, LUNG_SEGMENTS, name=f"{prefix}lungs",
                                         reference_volume=volume, fill_opacity=0.25)
    lesions_file = outdir / "lesions.seg.nrrd"
    if lesions_file.is_file():
        result.lesions = load_segmentation(scene, lesions_file, LESION_SEGMENTS, name=f"{prefix}lesions",
                                           reference_volume=volume, closed_surfaces=closed_surfaces)
        lesions = label_array(result.lesions, volume, LESION_SEGMENTS)
        lungs = label_array(result.lungs, volume, LUNG_SEGMENTS) if result.lungs is not None else None
        points = lesion_points(lesions, ijk_to_ras(volume), LESION_SEGMENTS, lungs=lungs)
        result.markups = add_lesion_markups(scene, points, name=f"{prefix}localized lesions")
    for model, classifier in (result.report.get("classifiers") or {}).items():
        name = classifier.get("localization_segmentation")
        if name:
            result.localizations[model] = load_localization(scene, outdir / name, volume, f"{prefix}{model}",
                                                            closed_surfaces=closed_surfaces)
        for kind, path in classifier_segmentations(classifier).items():
            result.segmentations[f"{model} {kind}"] = load_classifier_segmentation(
                scene, outdir / path, kind, volume, f"{prefix}{model}", closed_surfaces=closed_surfaces)
        if classifier.get("slice_attention"):
            if ct is None and not classifier.get("slice_positions"):
                ct = analysed_ct(outdir, result.report)  # read once, for every classifier
            positions = attended_slice_positions(classifier, result.report, outdir, ct)
            result.attention[model] = attention_plot(scene, model, classifier["slice_attention"],
                                                     name=f"{prefix}{model} attention per slice", positions=positions)
    heatmap_paths, skipped = heatmap_selection(outdir, result.report)
    for model, path in heatmap_paths.items():
        result.heatmaps[model] = load_heatmap(scene, path, model, reference_volume=volume,
                                              threshold=threshold, opacity=opacity)
    for path, why in skipped.items():
        result.notes.append(f"{path.name} not loaded: {why}")
        logger.warning("%s not loaded: %s", path, why)
    result.table = report_table(scene, result.report, name=f"{prefix}measurements", notes=result.notes)


def classifier_segmentations(entry: dict) -> dict[str, str]:
    """{kind: file} of a classifier's report entry: its segmentations other than the localized lesion (which
    ``load_localization`` shows with a point), e.g. lobe-patch's lung regions and infected region."""
    return {kind: entry[f"{kind}_segmentation"] for kind in CLASSIFIER_SEGMENTS
            if kind != "localization" and entry.get(f"{kind}_segmentation")}


def load_classifier_segmentation(scene, path: Path, kind: str, volume, name: str, *, closed_surfaces: bool = True):
    """A classifier's segmentation file of ``kind`` (a key of ``labels.CLASSIFIER_SEGMENTS``) as a node."""
    return load_segmentation(scene, path, CLASSIFIER_SEGMENTS[kind], name=f"{name} {kind}", reference_volume=volume,
                             closed_surfaces=closed_surfaces, fill_opacity=0.3)


def load_localization(scene, path: Path, volume, name: str, *, closed_surfaces: bool = True) -> tuple:
    """(segmentation, point list) of a classifier's localized lesion file: the segment and one point at its centre."""
    node = load_segmentation(scene, path, (LOCALIZATION_SEGMENT,), name=f"{name} localized lesion",
                             reference_volume=volume, closed_surfaces=closed_surfaces)
    mask = label_array(node, volume, (LOCALIZATION_SEGMENT,))
    points = lesion_points(mask, ijk_to_ras(volume), (LOCALIZATION_SEGMENT,), min_volume_ml=0.0)
    return node, add_lesion_markups(scene, points[:1], name=f"{name} lesion centre")

