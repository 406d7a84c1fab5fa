"""The logic of the Classifiers module: one ``ClassifierLogic`` per classifier, made from the classifier table.

Which classifiers exist, what they are called, which paper they come from and how they explain themselves is read
from the model registry and ``CovidCTAnalysis.classifiers.runnable_classifiers`` (adding a classifier to the
package adds it here); the names the project reserves for classifiers it does not ship yet are listed as
unavailable. Each logic runs the same `covidct analyze INPUT --models MODEL --progress jsonl` as the Analyze module
(so the classifier gets the lung mask it needs and writes its explanation maps), on a temporary copy of the CT, and
shows: P(COVID-19) and the label from report.json, the model's other numbers, its default heatmap as a foreground
overlay (its other maps, e.g. LRP, as volumes beside it), where the model localizes a lesion its segment and centre
point, and where it weighs slices its attention per slice (table and bar chart, slices at their z in mm).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from CovidCTAnalysis.mrml import heatmaps
from CovidCTAnalysis.mrml.plots import attention_plot, chart_series
from CovidCTAnalysis.mrml.jobs import JobRunner, ProcessFactory, RunningLogic
from CovidCTAnalysis.mrml.process import BackgroundProcess, analyze_command
from CovidCTAnalysis.mrml.results import (AnalysedVolume, attended_slice_positions, classifier_segmentations,
                                          heatmap_files, load_classifier_segmentation, load_localization,
                                          nothing_added_on_failure, read_report, remove_with_helpers)

from .Parameters import ClassifierParameters

#: report keys every classifier has (docs/CONTRACTS.md); the others, but segmentation files, are shown as
#: model-specific results
STANDARD_KEYS = ("probability", "label", "heatmap", "heatmaps")


def classifier_choices() -> list[tuple[str, object]]:
    """[(name, ClassifierInfo or None)]: the runnable classifiers in registry order, then the reserved names this
    version does not ship (None)."""
    from CovidCTAnalysis.classifiers import runnable_classifiers
    from CovidCTAnalysis.models.registry import CONTRACT_MODELS

    infos = [(info.name, info) for info in runnable_classifiers()]
    shipped = {name for name, _ in infos}
    return infos + [(name, None) for name, task in CONTRACT_MODELS.items()
                    if task == "classification" and name not in shipped]


class ClassifierLogic(RunningLogic):
    """Run classifier ``model`` on the selected CT and show its result and heatmaps."""

    def __init__(self, scene, model: str, process_factory: ProcessFactory = BackgroundProcess,
                 python: Optional[str] = None):
        self.scene = scene
        self.model = model
        self.python = python
        self.runner = JobRunner(process_factory)
        self.result: Optional[dict] = None
        self.heatmap = None
        self.extra_heatmaps: dict = {}  # method -> volume node, the model's other explanation maps
        self.localization: tuple = ()  # (segmentation, point list) of a localized lesion, when the model makes one
        self.segmentations: dict = {}  # kind -> segmentation node, the model's other segments (e.g. lung regions)
        self.attention: tuple = ()  # (table, plot chart) of the attention per slice, when the model gives one

    def info(self):
        """The classifier's ClassifierInfo (title, paper, explanation, inputs), or None when it is not shipped."""
        return dict(classifier_choices()).get(self.model)

    def available(self) -> bool:
        """Whether this version ships the model (registered, with its subpackage)."""
        return self.info() is not None

    def description(self) -> str:
        info = self.info()
        if info is None:
            return f"{self.model}: not available in this version."
        return f"{info.title}. {info.paper}. Explanation: {info.explanation}."

    def start(self, parameters: ClassifierParameters) -> None:
        volume = parameters.inputVolume
        if volume is None:
            raise ValueError("select a CT volume")
        if not self.available():
            raise ValueError(f"model {self.model} is not available in this version")
        device = parameters.device

        def command(source: Path, outdir: Path):
            return analyze_command(source, outdir, device=device, models=self.model, python=self.python)

        analysed = AnalysedVolume(self.scene, volume)

        def load(outdir: Path) -> None:
            self._load(outdir, parameters, analysed.node())

        self.runner.run(volume, command, load)

    def _load(self, outdir: Path, parameters: ClassifierParameters, volume) -> None:
        """Show the outputs on ``volume``, the CT that was classified; a load that fails adds nothing."""
        self.clear()
        with nothing_added_on_failure(self.scene):
            try:
                self._load_outputs(outdir, parameters, volume)
            except BaseException:
                self.clear()  # the logic forgets the nodes it had loaded (nothing_added_on_failure removes the rest)
                raise

    def _load_outputs(self, outdir: Path, parameters: ClassifierParameters, volume) -> None:
        report = read_report(outdir)
        result = (report.get("classifiers") or {}).get(self.model)
        if result is None:
            raise ValueError(f"the report has no result for {self.model}")
        self.result = result
        for method, name in (result.get("heatmaps") or {}).items():
            if name != result.get("heatmap") and (outdir / name).is_file():
                node = heatmaps.load_heatmap(self.scene, outdir / name, f"{self.model}-{method}",
                                             reference_volume=volume, threshold=parameters.heatmapThreshold,
                                             opacity=parameters.heatmapOpacity)
                node.StorableModified()
                self.extra_heatmaps[method] = node
        path = heatmap_files(outdir, report).get(self.model)
        if path is not None:
            self.heatmap = heatmaps.load_heatmap(
                self.scene, path, self.model, reference_volume=volume,
                threshold=parameters.heatmapThreshold, opacity=parameters.heatmapOpacity)
            self.heatmap.StorableModified()  # its file was temporary: let Slicer's Save write it
            if parameters.showHeatmap:
                heatmaps.show_heatmap(self.scene, self.heatmap, volume)
        located = result.get("localization_segmentation")
        if located:
            self.localization = load_localization(self.scene, outdir / located, volume, self.model)
            for node in self.localization:
                node.StorableModified()
        for kind, name in classifier_segmentations(result).items():
            node = load_classifier_segmentation(self.scene, outdir / name, kind, volume, self.model)
            node.StorableModified()
            self.segmentations[kind] = node
        if result.get("slice_attention"):  # slices named as report.html names them: z in mm, DICOM instance, file
            self.attention = attention_plot(self.scene, self.model, result["slice_attention"],
                                            positions=attended_slice_positions(result, report, outdir))

    def attention_chart(self):
        """The plot chart of the attention per slice (None when the model gives none), for a plot view."""
        return self.attention[1] if self.attention else None

    def clear(self) -> None:
        plotted = (*self.attention, *chart_series(self.attention[1])) if self.attention else ()
        for node in (self.heatmap, *self.extra_heatmaps.values(), *self.localization, *self.segmentations.values(),
                     *plotted):
            remove_with_helpers(self.scene, node)
        self.heatmap = None
        self.extra_heatmaps = {}
        self.localization = ()
        self.segmentations = {}
        self.attention = ()
        self.result = None

    def result_rows(self) -> list[tuple[str, str]]:
        """[(name, text)]: P(COVID-19), label, then the model-specific results."""
        if self.result is None:
            return []
        rows = [("P(COVID-19)", f"{self.result['probability']:.3f}"), ("Label", str(self.result.get("label", "")))]
        return rows + self.specific_rows(self.result)

    def specific_rows(self, result: dict) -> list[tuple[str, str]]:
        """Model-specific results: by default every other scalar the report gives for this model."""
        return [(key.replace("_", " "), _text(value)) for key, value in result.items()
                if key not in STANDARD_KEYS and not key.endswith("_segmentation")
                and isinstance(value, (int, float, str, bool))]


def _text(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
