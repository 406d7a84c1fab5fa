"""Analyze one CT volume node in the background and put the results in the scene (no Qt: the Widget drives it).

Life cycle: ``start(parameters)`` (or ``start_demo``) → the GUI timer calls ``poll()`` → when ``state`` turns to
SUCCEEDED the outputs are already in the scene (``results``), FAILED leaves ``error_message`` (one line), CANCELLED
leaves nothing. The process is the same `covidct analyze ... --progress jsonl` as on the command line, run by
Slicer's Python (PythonSlicer) on a temporary copy of the volume: the user's volume node is never modified.

One logic for every front end: the Analyze module's panel (CovidCTAnalyzeLib re-exports it) and the browser app
(CovidCTAnalysis.web) drive this class; ``AnalyzeParameters`` is the state both keep in the scene's parameter node.
"""

from __future__ import annotations

from pathlib import Path

from . import heatmaps
from .jobs import JobRunner, ProcessFactory, RunningLogic
from .parameters import Bool, Choice, Float, NodeReference, ParameterNode, String, StringList
from .process import BackgroundProcess, analyze_command
from .results import (AnalysedVolume, AnalysisNodes, analyses_in_scene, load_analysis, nothing_added_on_failure,
                      remove_analysis, remove_found_analysis)
from .tables import Row, table_rows

DEVICES = ("auto", "cpu", "cuda")


class AnalyzeParameters(ParameterNode):
    """Input volume, device, classifiers (empty: every available one), heatmap display, output folder."""

    module_name = "CovidCTAnalyze"
    inputVolume = NodeReference("vtkMRMLScalarVolumeNode")
    device = Choice("auto", DEVICES)
    classifiers = StringList(())
    heatmapThreshold = Float(0.5, minimum=0.0, maximum=1.0)
    heatmapOpacity = Float(0.4, minimum=0.0, maximum=1.0)
    show3D = Bool(True)
    outputFolder = String("")  # empty: a temporary folder, removed once the results are in the scene


def available_classifiers() -> list[str]:
    """Classifiers this version ships (the model registry); the others are not offered."""
    from ..models.registry import load_registry

    return load_registry().available("classification")


def models_argument(selected, available) -> str:
    """The --models value: 'all' when nothing or everything is selected, else the selected available names."""
    chosen = [m for m in selected if m in available]
    if not chosen or set(chosen) == set(available):
        return "all"
    return ",".join(chosen)


class AnalyzeLogic(RunningLogic):
    """Runs the analysis of the selected volume and manages its results in ``scene``."""

    def __init__(self, scene, process_factory: ProcessFactory = BackgroundProcess, python: str | None = None,
                 demo_size=None, app_logic=None):
        self.scene = scene
        self.app_logic = app_logic  # Slicer's application logic: its slice views are fitted, its table view filled
        self.python = python
        self.demo_size = demo_size
        self.runner = JobRunner(process_factory)
        self.results: AnalysisNodes | None = None

    # -- running --------------------------------------------------------------------------------------------------
    def start(self, parameters: AnalyzeParameters) -> None:
        """Analyze ``parameters.inputVolume``; ValueError when no volume is selected or a run is going on."""
        if parameters.inputVolume is None:
            raise ValueError("select a CT volume to analyze")
        self._start(parameters, parameters.inputVolume)

    def start_demo(self, parameters: AnalyzeParameters) -> None:
        """Analyze the generated demo chest CT (known lesions); the demo CT is loaded with the results."""
        self._start(parameters, None)

    def start_file(self, parameters: AnalyzeParameters, path: str | Path) -> None:
        """Analyze the CT file or folder ``path`` itself, as `covidct analyze PATH` does (its report names it; 2-D
        slices and slice stacks keep their display-window mapping); the results go onto ``parameters.inputVolume``
        (the CT shown, on the input's grid) when one is set, else onto the CT loaded from the report."""
        self._start(parameters, parameters.inputVolume, source_path=Path(path))

    def _start(self, parameters: AnalyzeParameters, volume, source_path: Path | None = None) -> None:
        models = models_argument(parameters.classifiers, available_classifiers())
        device = parameters.device
        outdir = parameters.outputFolder or None
        if outdir and Path(outdir).is_dir() and any(Path(outdir).iterdir()):
            raise ValueError(f"output folder {outdir} is not empty; choose an empty or new folder")

        def command(source: Path | None, out: Path):
            return analyze_command(source_path or source, out, device=device, models=models, python=self.python,
                                   demo_size=self.demo_size)

        analysed = AnalysedVolume(self.scene, volume) if volume is not None else None

        def load(out: Path) -> None:
            self._load_results(out, analysed, parameters)

        self.runner.run(None if source_path else volume, command, load, outdir=outdir)

    def _load_results(self, outdir: Path, analysed: AnalysedVolume | None, parameters: AnalyzeParameters) -> None:
        volume = analysed.node() if analysed is not None else None  # refuses before anything is replaced
        self.clear_results(keep=volume)
        self.clear_earlier_results(volume)
        with nothing_added_on_failure(self.scene):
            results = load_analysis(
                self.scene, outdir, reference_volume=volume, closed_surfaces=parameters.show3D,
                heatmap_threshold=parameters.heatmapThreshold, heatmap_opacity=parameters.heatmapOpacity,
                app_logic=self.app_logic)
            if not parameters.outputFolder:
                results.mark_unsaved()
        self.results = results
        if volume is None:
            parameters.inputVolume = results.volume

    # -- results --------------------------------------------------------------------------------------------------
    def clear_results(self, keep=None) -> None:
        """Remove the nodes of the previous analysis: not the CT the user brought, but the CT it loaded itself (the
        demo CT), so a second demo run leaves one demo CT; ``keep``, the CT analysed now, stays in any case (the
        demo CT analysed again becomes a CT like any other)."""
        if self.results is not None:
            if keep is not None and self.results.volume is keep:
                self.results.owns_volume = False
            remove_analysis(self.scene, self.results)
        self.results = None

    def clear_earlier_results(self, volume=None) -> None:
        """Remove the results another logic object left in the scene (an earlier instance: the module reloaded, a
        second front end, a saved scene) that this analysis replaces, as ``clear_results`` removes this one's: the
        earlier analyses of ``volume``, the CT analysed now (which stays), or for a demo run (``volume`` None) the
        earlier demo analyses with their demo CT (not an analysis loaded from a folder with its own CT). They are
        found by the attributes every analysis node carries (``results.ANALYSIS_ATTRIBUTE``, ``DEMO_ATTRIBUTE``) and
        their reference to their CT."""
        for found in analyses_in_scene(self.scene):
            if self.results is not None and found.analysis_id == self.results.analysis_id:
                continue
            if (volume is not None and found.volume is volume) or (volume is None and found.owns_volume
                                                                   and found.demo):
                remove_found_analysis(self.scene, found, keep=volume)

    @property
    def view_request(self):
        """How the views were set up after the last analysis (``CovidCTAnalysis.mrml.views.ViewRequest``), or None."""
        return self.results.view if self.results is not None else None

    def result_rows(self) -> list[Row]:
        return table_rows(self.results.table) if self.results is not None and self.results.table else []

    def heatmap_models(self) -> list[str]:
        return list(self.results.heatmaps) if self.results is not None else []

    def set_heatmap_visible(self, model: str, visible: bool) -> None:
        node = self.results.heatmaps[model]
        if visible:
            heatmaps.show_heatmap(self.scene, node, self.results.volume)
        else:
            heatmaps.hide_heatmap(self.scene, node)

    def heatmap_visible(self, model: str) -> bool:
        return heatmaps.is_shown(self.scene, self.results.heatmaps[model])

    def set_heatmap_opacity(self, model: str, opacity: float) -> None:
        heatmaps.set_heatmap_opacity(self.results.heatmaps[model], opacity)

    def heatmap_opacity(self, model: str) -> float:
        return heatmaps.heatmap_opacity(self.results.heatmaps[model])

    def set_heatmap_threshold(self, threshold: float) -> None:
        for node in (self.results.heatmaps.values() if self.results is not None else ()):
            heatmaps.set_threshold(node, threshold)
