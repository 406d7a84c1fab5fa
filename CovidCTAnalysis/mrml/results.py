"""Load the outputs of `covidct analyze` into a scene: the Analyze module's last step, usable without Slicer's GUI.

For an output folder OUT (docs/CONTRACTS.md 'Command line'):

| file | becomes |
|---|---|
| report.json | a table node of the measurements (and the reference to the CT for ``--demo`` runs) |
| lungs.seg.nrrd | segmentation "lungs": segments right lung / left lung, terminology, colours |
| lesions.seg.nrrd (when present) | segmentation "lesions": GGO / consolidation / crazy paving, closed surfaces in 3-D, and a point list of the localized lesions |
| localization-MODEL.seg.nrrd (each the report names) | segmentation "MODEL localized lesion" and a point at its centre (DeCoVNet, seed 002 §II-E) |
| heatmap-MODEL.nrrd (each present) | scalar volume "MODEL heatmap", jet colours 0..1, threshold; the first is composited over the CT |
| a classifier's ``slice_attention`` in report.json | table "MODEL attention per slice" and a bar chart of it (``plots``) |

The CT is the volume node the user analyzed (``reference_volume``) and is never modified; without one, the CT file
the report names is loaded (the demo CT of a ``--demo`` run lies in OUT). Every segmentation and heatmap is checked
to lie on the CT's grid.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

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


def heatmap_files(outdir: Path, report: dict) -> dict[str, Path]:
    """{model: heatmap file} present in OUT: those the report names, then any other heatmap-*.nrrd."""
    found: dict[str, Path] = {}
    for model, result in (report.get("classifiers") or {}).items():
        path = outdir / (result.get("heatmap") or f"heatmap-{model}.nrrd")
        if path.is_file():
            found[model] = path
    for path in sorted(outdir.glob("heatmap-*.nrrd")):
        found.setdefault(path.name[len("heatmap-"):-len(".nrrd")], path)
    return found


def _load_ct(scene, outdir: Path, report: dict):
    named = Path(report.get("input", {}).get("path", ""))
    for candidate in (outdir / named.name, named):
        if named.name and candidate.is_file():
            volume = load_volume(scene, candidate)
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
    with nothing_added_on_failure(scene):
        volume = _load_ct(scene, outdir, report) if created_ct else reference_volume
        result = AnalysisNodes(outdir=outdir, report=report, volume=volume, owns_volume=created_ct)
        _populate(scene, result, closed_surfaces, heatmap_threshold, heatmap_opacity, name_prefix)
        if show:
            result.view = show_analysis(scene, result, app_logic, in_3d=closed_surfaces)
    return result


def remove_analysis(scene, result: AnalysisNodes) -> None:
    """Remove the nodes one analysis created (not the CT the user brought, but the CT it loaded itself, see
    ``AnalysisNodes.owns_volume``) and its subject hierarchy folder."""
    for node in result.nodes() + ([result.volume] if result.owns_volume else []):
        remove_with_helpers(scene, node)
    if result.view is not None:
        remove_folder(scene, result.view.folder_item)


def _populate(scene, result: AnalysisNodes, closed_surfaces, threshold, opacity, prefix) -> None:
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
            result.attention[model] = attention_plot(scene, model, classifier["slice_attention"],
                                                     name=f"{prefix}{model} attention per slice")
    for model, path in heatmap_files(outdir, result.report).items():
        result.heatmaps[model] = load_heatmap(scene, path, model, reference_volume=volume,
                                              threshold=threshold, opacity=opacity)
    result.table = report_table(scene, result.report, name=f"{prefix}measurements")


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

