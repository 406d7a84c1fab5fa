"""One logic class per seed system's classifier; a class is offered once its model is in the registry.

Each logic runs the same `covidct analyze INPUT --models MODEL --progress jsonl` as the Analyze module (so the
classifier gets the lung mask it needs and writes its explanation heatmap), on a temporary copy of the CT, and
shows: P(COVID-19) and the label from report.json, any model-specific numbers the report adds for that model, the
heatmap as a foreground overlay and, where the model localizes a lesion (DeCoVNet), its segment and centre point. The
classes differ in what they are (paper, explanation method) and in how
they present their model-specific results; the science lives in CovidCTAnalysis.classifiers.<system>.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from CovidCTAnalysis.mrml import heatmaps
from CovidCTAnalysis.mrml.jobs import JobRunner, ProcessFactory, RunningLogic
from CovidCTAnalysis.mrml.process import BackgroundProcess, analyze_command
from CovidCTAnalysis.mrml.results import heatmap_files, load_localization, read_report, remove_with_helpers

from .Parameters import ClassifierParameters

#: report keys every classifier has (docs/CONTRACTS.md); the others are shown as model-specific results
STANDARD_KEYS = ("probability", "label", "heatmap", "localization_segmentation")


class ClassifierLogic(RunningLogic):
    """Base: run one classifier on the selected CT and show its result and heatmap."""

    model: ClassVar[str] = ""
    seed: ClassVar[str] = ""
    title: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    explanation: ClassVar[str] = ""

    def __init__(self, scene, process_factory: ProcessFactory = BackgroundProcess, python: str | None = None):
        self.scene = scene
        self.python = python
        self.runner = JobRunner(process_factory)
        self.result: dict | None = None
        self.heatmap = None
        self.localization: tuple = ()  # (segmentation, point list) of a localized lesion, when the model makes one

    @classmethod
    def available(cls) -> bool:
        """Whether this version ships the model (its registry entry exists)."""
        from CovidCTAnalysis.models.registry import load_registry

        return cls.model in load_registry().available("classification")

    @classmethod
    def description(cls) -> str:
        return f"{cls.title} (seed {cls.seed}). {cls.reference} Explanation: {cls.explanation}."

    def start(self, parameters: ClassifierParameters) -> None:
        volume = parameters.inputVolume
        if volume is None:
            raise ValueError("select a CT volume")
        if not self.available():
            raise ValueError(f"model {self.model} is not available in this version")
        device = parameters.device

        def command(source: Path, outdir: Path):
            return analyze_command(source, outdir, device=device, models=self.model, python=self.python)

        def load(outdir: Path) -> None:
            self._load(outdir, parameters)

        self.runner.run(volume, command, load)

    def _load(self, outdir: Path, parameters: ClassifierParameters) -> None:
        self.clear()
        report = read_report(outdir)
        result = (report.get("classifiers") or {}).get(self.model)
        if result is None:
            raise ValueError(f"the report has no result for {self.model}")
        self.result = result
        path = heatmap_files(outdir, report).get(self.model)
        if path is not None:
            self.heatmap = heatmaps.load_heatmap(
                self.scene, path, self.model, reference_volume=parameters.inputVolume,
                threshold=parameters.heatmapThreshold, opacity=parameters.heatmapOpacity)
            self.heatmap.StorableModified()  # its file was temporary: let Slicer's Save write it
            if parameters.showHeatmap:
                heatmaps.show_heatmap(self.scene, self.heatmap, parameters.inputVolume)
        located = result.get("localization_segmentation")
        if located:
            self.localization = load_localization(self.scene, outdir / located, parameters.inputVolume, self.model)
            for node in self.localization:
                node.StorableModified()

    def clear(self) -> None:
        for node in (self.heatmap, *self.localization):
            remove_with_helpers(self.scene, node)
        self.heatmap = None
        self.localization = ()
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
                if key not in STANDARD_KEYS and isinstance(value, (int, float, str, bool))]


def _text(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


class SliceResNetLogic(ClassifierLogic):
    model = "slice-resnet"
    seed = "003"
    title = "Slice ResNet (ResNet-18 here; ResNet-50 in the paper) with multi-scale Grad-CAM"
    reference = "Gozes et al., rapid AI development cycle for COVID-19 CT (RADLogics)."
    explanation = "multi-scale Grad-CAM (14x14 and 28x28) combined into a 3-D localization map"


class DeCoVNetLogic(ClassifierLogic):
    model = "decovnet"
    seed = "002"
    title = "DeCoVNet, weakly supervised 3-D classification"
    reference = "Wang et al., IEEE TMI 2020."
    explanation = "class activation map (CAM); lesions localized with 3-D connected components"


class DACMILLogic(ClassifierLogic):
    model = "da-cmil"
    seed = "004"
    title = "DA-CMIL, dual attention multiple-instance learning"
    reference = "Chikontwe et al., 2020."
    explanation = "slice attention scores and gated spatial attention maps"


class LobePatchLogic(ClassifierLogic):
    model = "lobe-patch"
    seed = "001"
    title = "Interpretable lobe/patch network"
    reference = "Ghavami Modegh et al. (Sharif AI-Med), 2020."
    explanation = "coarse and fine infection maps"


class CVAENetVLADLogic(ClassifierLogic):
    model = "cvae-netvlad"
    seed = "000"
    title = "iCovid CVAE encoder with NetVLAD"
    reference = "Díaz Berenguer et al., explainable-by-design semi-supervised representation learning, 2020."
    explanation = "LRP-CMP relevance heatmaps"


#: model name -> logic class, in docs/CONTRACTS.md order
CLASSIFIER_LOGICS: dict[str, type[ClassifierLogic]] = {
    cls.model: cls for cls in (SliceResNetLogic, DeCoVNetLogic, DACMILLogic, LobePatchLogic, CVAENetVLADLogic)
}


def available_logics() -> dict[str, type[ClassifierLogic]]:
    """The logic classes whose model this version ships."""
    return {name: cls for name, cls in CLASSIFIER_LOGICS.items() if cls.available()}
