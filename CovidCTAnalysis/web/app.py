"""The browser app: trame-slicer views of one MRML scene, driven by the same logic as the Slicer modules.

``CovidCTWebApp`` holds a trame-slicer ``SlicerApp`` (a slicer-core scene with its application logic and views that
render off screen and stream images to the page) and the Slicer modules' logic on that scene:

- the radiologist's page (``page.build_page``): open a CT, Analyze it (``jobs.AnalysisQueue`` over
  ``mrml.analyze_logic.AnalyzeLogic``: a background `covidct analyze` process, progress, Cancel, the outputs loaded by
  ``mrml.results``), the four-up views with the lungs and lesions as segments, one toggle and opacity per classifier's
  heatmap (``mrml.heatmaps``), the localized lesion, the measurements (``mrml.tables``) and the files to download;
- the annotator's page: the analysis's lesion mask or a lesions-unet pseudo-mask (``mrml.lesion_logic``) corrected
  with trame-slicer's Segment Editor effects (paint, erase, threshold) and saved into the images/ + masks/ dataset
  that ``scripts/train_lesions.py --corrected`` reads (``mrml.dataset``).

Nothing here analyzes or measures: every number and node comes from the mrml adapter. Bad input gives one line on
the page (``uploads``) and the server goes on. The server reads CTs only from ``data_dir`` (and uploads), writes only
into ``outputs``, and serves over HTTP only the analyses' output folders.
"""

from __future__ import annotations

import asyncio
import math
import sys
import uuid
from pathlib import Path

from ..errors import InputError
from ..labels import LESION_SEGMENTS
from ..mrml.analyze_logic import AnalyzeLogic, AnalyzeParameters
from ..mrml.lesion_logic import OUTPUT_NAME, LesionSegmentationLogic, LesionSegmentationParameters
from ..mrml.process import ProcessState
from ..mrml.results import LUNG_WINDOW
from ..mrml.segmentations import segment_ids_by_name
from ..mrml.terminology import load_terminology
from ..mrml.views import show_slices
from ..mrml.volumes import load_volume
from . import page, uploads
from .jobs import AnalysisQueue

FILES_URL = "covidct-files"  # where the analyses' output folders are served
POLL_S = 0.25
DOWNLOADS = ("report.html", "report.pdf", "report.json", "lungs.seg.nrrd", "lesions.seg.nrrd")
SCENE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".mha", ".mhd")  # opened as they are; others go through io.load_ct


class CovidCTWebApp:
    """One trame server with one scene (see the module docstring). ``server.start()`` serves it."""

    def __init__(self, data_dir: str | Path, outputs: str | Path, *, server=None, demo_size=(256, 256, 96),
                 device: str = "auto", models: str = "all", max_upload_bytes: int = uploads.MAX_UPLOAD_BYTES,
                 python: str | None = None):
        from trame.app import get_server
        from trame_slicer.core import LayoutManager, SlicerApp
        from trame_slicer.rca_view import register_rca_factories

        self.data_dir = Path(data_dir).resolve()
        self.outputs = Path(outputs).resolve()
        self.outputs.mkdir(parents=True, exist_ok=True)
        (self.outputs / "runs").mkdir(exist_ok=True)
        self.demo_size = tuple(int(v) for v in demo_size)
        self.max_upload_bytes = int(max_upload_bytes)
        self.server = server or get_server(client_type="vue3")
        self.state, self.ctrl = self.server.state, self.server.controller

        self.slicer = SlicerApp()
        self.scene = self.slicer.scene
        load_terminology(self.slicer.terminologies_logic)
        register_rca_factories(self.slicer.view_manager, self.server, rca_encoder="jpeg")
        self.layout_manager = LayoutManager(self.scene, self.slicer.view_manager, self.server)
        self.layout_manager.register_layout_dict(LayoutManager.default_grid_configuration())
        self.layout_manager.set_layout("Quad View")
        for view in self.slicer.view_manager.get_threed_views():
            # The 3-D view peels depth to draw see-through surfaces (the lungs around the lesions); on a multisampled
            # off-screen window it drew none of them, leaving the lesions floating without their lungs.
            view.render_window().SetMultiSamples(0)

        python = python or sys.executable
        self.analyze_logic = AnalyzeLogic(self.scene, python=python, app_logic=self.slicer.app_logic)
        self.analyze_parameters = AnalyzeParameters.of(self.scene)
        self.analyze_parameters.device = device
        self.analyze_parameters.classifiers = [] if models == "all" else models.split(",")
        self.queue = AnalysisQueue(self.analyze_logic, self.analyze_parameters, self.outputs)
        self.lesion_logic = LesionSegmentationLogic(self.scene, python=python)
        self.lesion_parameters = LesionSegmentationParameters.of(self.scene)
        self.lesion_parameters.device = device
        self.lesion_parameters.datasetFolder = str(self.outputs / "dataset")
        self.ct = None  # the volume node shown (the CT opened last, or the one the last analysis loaded)
        self.ct_source: Path | None = None
        self._pseudo_running = False

        self.server.serve[FILES_URL] = str(self.outputs / "runs")
        self._init_state()
        self._bind_controller()
        self.ui = page.build_page(self)
        self.ctrl.on_server_ready.add(self._start_polling)

    # -- state ---------------------------------------------------------------------------------------------------
    def _init_state(self) -> None:
        s = self.state
        s.trame__title = "COVID-19 CT analysis"
        s.max_upload_bytes = self.max_upload_bytes
        s.update({
            "page": "radiologist", "message": "", "message_type": "info", "ct_name": "", "data_path": "",
            "running": False, "progress": 0, "stage": "", "queued": 0, "analysis_done": False,
            "rows": [], "heatmaps": [], "localization": "", "downloads": [], "mask_name": "", "tool": "none",
            "brush_mm": 10.0, "threshold_range": [-600.0, 100.0], "segments": [], "active_segment": "",
            "case_id": "case-0001", "saved": "", "demo_label": "x".join(map(str, self.demo_size)),
            "heatmap_threshold": self.analyze_parameters.heatmapThreshold,
        })

    def _bind_controller(self) -> None:
        """Page actions as trame triggers ``covidct_NAME`` (the page calls ``trigger('covidct_NAME', [args])``)."""
        actions = {
            "load_demo": self.load_demo, "open_path": self.open_path, "upload": self.upload, "analyze": self.analyze,
            "cancel": self.cancel, "toggle_heatmap": self.toggle_heatmap, "heatmap_opacity": self.set_heatmap_opacity,
            "use_analysis_mask": self.use_analysis_mask, "pseudo_mask": self.pseudo_mask, "set_tool": self.set_tool,
            "apply_threshold": self.apply_threshold, "save_correction": self.save_correction,
        }
        for name, action in actions.items():
            self.server.trigger(f"covidct_{name}")(action)
        self.state.change("brush_mm")(self._on_brush)
        self.state.change("heatmap_threshold")(self._on_heatmap_threshold)
        self.state.change("active_segment")(self._on_active_segment)

    def say(self, text: str, kind: str = "info") -> None:
        """One line on the page: what happened, or why something was refused ('error')."""
        self.state.message, self.state.message_type = text, kind

    def _guard(self, action, *args):
        """Run a page action; bad input or a refused action becomes the page's message, never a server error."""
        try:
            return action(*args)
        except (InputError, ValueError) as exc:
            self.say(str(exc), "error")
        except OSError as exc:
            self.say(f"{exc.strerror or exc}: {exc.filename or ''}".strip(": "), "error")
        except Exception as exc:  # noqa: BLE001 - an internal error is reported on the page; the server goes on
            self.say(f"internal error: {type(exc).__name__}: {exc}", "error")
        return None

    # -- opening a CT --------------------------------------------------------------------------------------------
    def _display_file(self, path: Path) -> Path:
        """A volume file the scene loads to show the CT at ``path`` on its own grid: the file itself (NIfTI, NRRD,
        MHA), else (DICOM, 2-D slices, folders) the CT as the package reads it (io.load_ct: HU, approximate HU for
        8-bit slices, as the analysis sees it) written once into OUTPUTS/opened/."""
        if path.is_file() and path.name.lower().endswith(SCENE_SUFFIXES):
            return path
        from ..io import load_ct, to_input_grid, write_volume

        ct = load_ct(path)
        target = self.outputs / "opened" / uuid.uuid4().hex[:12] / "ct.nrrd"
        target.parent.mkdir(parents=True)
        return write_volume(to_input_grid(ct.image, ct), target)

    def show_ct(self, path: Path, name: str) -> None:
        """Load a CT file or folder into the scene and show it in the slice views (Analyze then analyzes ``path``)."""
        volume = load_volume(self.scene, self._display_file(path), name=name)
        display = volume.GetDisplayNode()
        display.AutoWindowLevelOff()
        display.SetWindowLevel(*LUNG_WINDOW)
        self.ct, self.ct_source = volume, path
        show_slices(self.scene, volume, None, self.slicer.app_logic)
        self.slicer.display_manager.reset_views()
        self.state.ct_name = name
        self.state.analysis_done = False
        self.say(f"{name} is open: click Analyze")

    def load_demo(self) -> None:
        """Generate the demo chest CT (known lesions) into the output folder and open it."""
        def run():
            from ..demo import make_demo_ct, write_demo_case

            folder = self.outputs / "demo" / "x".join(map(str, self.demo_size))
            path = folder / "demo-ct.nrrd"
            if not path.is_file():
                write_demo_case(make_demo_ct(size=self.demo_size, seed=0), folder)
            self.show_ct(path, "demo CT")
        self._guard(run)

    def open_path(self) -> None:
        """Open the file or folder typed on the page (inside the data folder only)."""
        def run():
            path = uploads.resolve_data_path(self.data_dir, self.state.data_path)
            self.show_ct(path, path.name)
        self._guard(run)

    def upload(self, files) -> None:
        """Save one uploaded CT (checked by ``uploads.save_upload``) and open it."""
        def run():
            if not files:
                raise InputError(None, "no file was uploaded")
            file = files[0] if isinstance(files, (list, tuple)) else files
            content = file.get("content") or b""
            if isinstance(content, (list, tuple)):
                content = b"".join(content)
            size = int(file.get("size") or len(content))
            if size > self.max_upload_bytes:
                raise InputError(None, uploads.too_large_message(file.get("name", "upload"), size,
                                                                 self.max_upload_bytes))
            path = uploads.save_upload(file.get("name", ""), content, self.outputs / "uploads", self.max_upload_bytes)
            self.show_ct(path, path.name)
        self._guard(run)

    # -- analysis ------------------------------------------------------------------------------------------------
    def analyze(self) -> None:
        def run():
            request = self.queue.submit(self.ct_source, self.ct, self.state.ct_name)
            place = self.queue.position(request)
            label = f"analysis {request.number:04d} of {request.name}"
            self.say(f"{label} started" if place == 0 else
                     f"{label} is queued ({place} in line): it starts when the running one ends")
            self._publish_queue()
        self._guard(run)

    def cancel(self) -> None:
        if self.queue.running:
            self.queue.cancel()
            self.say("analysis cancelled")
        elif self._pseudo_running:
            self.lesion_logic.cancel()
        self._publish_queue()

    def _publish_queue(self) -> None:
        s = self.state
        s.running = self.queue.running or self._pseudo_running
        s.queued = len(self.queue.waiting)
        logic = self.analyze_logic if self.queue.running else self.lesion_logic
        s.progress = round(100 * logic.progress) if s.running else (100 if s.analysis_done else 0)
        s.stage = logic.stage_title if s.running else ""

    def _poll(self) -> None:
        was = self.queue.current
        self.queue.poll()
        if was is not None and self.queue.current is not was:
            self._analysis_ended(was)
        if self._pseudo_running:
            self.lesion_logic.poll()
            if not self.lesion_logic.running:
                self._pseudo_running = False
                self._pseudo_mask_ended()
        self._publish_queue()

    def _analysis_ended(self, request) -> None:
        if request.state is ProcessState.SUCCEEDED:
            results = self.analyze_logic.results
            self.ct = results.volume
            self.state.analysis_done = True
            self._publish_results(request)
            for view in self.slicer.view_manager.get_threed_views():  # slice views: fitted by load_analysis
                view.fit_view_to_content()
            self.say(f"analysis {request.number:04d} of {request.name} finished")
        elif request.state is ProcessState.CANCELLED:
            self.say(f"analysis {request.number:04d} of {request.name} cancelled")
        else:
            self.say(f"analysis {request.number:04d} of {request.name} failed: {request.error}", "error")

    def _publish_results(self, request) -> None:
        results = self.analyze_logic.results
        rows = []
        for row in self.analyze_logic.result_rows():
            value = "" if row.value is None or (isinstance(row.value, float) and math.isnan(row.value)) \
                else f"{row.value:.3f}" if abs(row.value) < 1 else f"{row.value:.1f}"
            rows.append({"measurement": row.measurement, "value": value, "unit": row.unit, "note": row.note})
        self.state.rows = rows
        self._publish_heatmaps()
        points = []
        for model, (_, markups) in results.localizations.items():
            if markups is not None and markups.GetNumberOfControlPoints():
                x, y, z = markups.GetNthControlPointPositionVector(0)
                points.append(f"{model}: localized lesion centre at R {x:.1f}, A {y:.1f}, S {z:.1f} mm (RAS)")
        self.state.localization = "; ".join(points) or "no classifier localized a lesion"
        self.state.downloads = [{"name": name, "url": f"{FILES_URL}/{request.outdir.name}/{name}"}
                                for name in DOWNLOADS + tuple(sorted(p.name for p in request.outdir.glob("heatmap-*")))
                                if (request.outdir / name).is_file()]

    def _publish_heatmaps(self) -> None:
        logic = self.analyze_logic
        self.state.heatmaps = [{"model": m, "visible": logic.heatmap_visible(m), "opacity": logic.heatmap_opacity(m)}
                               for m in logic.heatmap_models()]

    def toggle_heatmap(self, model: str) -> None:
        """Show one classifier's heatmap over the CT, or hide it (slice views have one foreground layer)."""
        def run():
            logic = self.analyze_logic
            if model not in logic.heatmap_models():
                raise ValueError(f"there is no heatmap of {model}")
            logic.set_heatmap_visible(model, not logic.heatmap_visible(model))
            self._publish_heatmaps()
        self._guard(run)

    def set_heatmap_opacity(self, model: str, opacity) -> None:
        def run():
            self.analyze_logic.set_heatmap_opacity(model, min(max(float(opacity), 0.0), 1.0))
            self._publish_heatmaps()
        self._guard(run)

    def _on_heatmap_threshold(self, heatmap_threshold, **_):
        """Heatmap voxels below the threshold are transparent (every heatmap; kept for the next analysis)."""
        def run():
            value = min(max(float(heatmap_threshold), 0.0), 1.0)
            self.analyze_parameters.heatmapThreshold = value
            self.analyze_logic.set_heatmap_threshold(value)
        self._guard(run)

    # -- annotation ----------------------------------------------------------------------------------------------
    def use_analysis_mask(self) -> None:
        """Correct the lesion mask of the last analysis."""
        def run():
            request = self.queue.finished
            if not self.state.analysis_done or request is None or not (request.outdir / OUTPUT_NAME).is_file():
                raise ValueError("analyze a CT first: its lesion mask is what you correct")
            self.lesion_parameters.inputVolume = self.ct
            self.lesion_logic.load_mask(self.lesion_parameters, request.outdir / OUTPUT_NAME,
                                        name=f"{self.state.ct_name} lesions (correction)")
            self._hide_analysis_lesions()
            self._edit_mask()
        self._guard(run)

    def pseudo_mask(self) -> None:
        """Segment the open CT with lesions-unet in the background (the Lesion Segmentation module's pseudo-mask)."""
        def run():
            if self.ct is None:
                raise ValueError("open a CT first")
            if self.queue.running or self._pseudo_running:
                raise ValueError("wait for the running analysis to end")
            self.lesion_parameters.inputVolume = self.ct
            self.lesion_logic.start_pseudo_mask(self.lesion_parameters)
            self._pseudo_running = True
            self.say("making the pseudo-mask")
        self._guard(run)

    def _hide_analysis_lesions(self) -> None:
        """The mask being corrected replaces the analysis's lesions (and their points) in the views."""
        results = self.analyze_logic.results
        for node in (results.lesions, results.markups) if results is not None else ():
            if node is not None and node.GetDisplayNode() is not None:
                node.GetDisplayNode().SetVisibility(False)

    def _pseudo_mask_ended(self) -> None:
        if self.lesion_logic.state is ProcessState.SUCCEEDED:
            self._hide_analysis_lesions()
            self._edit_mask()
        else:
            self.say(f"the pseudo-mask failed: {self.lesion_logic.error_message}", "error")

    def _edit_mask(self) -> None:
        node = self.lesion_parameters.segmentation
        editor = self.slicer.segmentation_editor
        editor.set_active_segmentation(node, self.ct)
        ids = segment_ids_by_name(node)
        for segment in LESION_SEGMENTS[:2]:  # the annotator paints ground glass or consolidation
            if segment.name not in ids:
                ids[segment.name] = node.GetSegmentation().AddEmptySegment("", segment.name)
        self.state.segments = [{"title": name, "value": sid} for name, sid in ids.items()]
        self.state.active_segment = ids[LESION_SEGMENTS[0].name]
        editor.set_active_segment_id(self.state.active_segment)
        self.state.mask_name = node.GetName()
        self.state.saved = ""
        self.say(f"{node.GetName()} is ready to correct: choose a tool and draw in a slice view")

    def _editor_ready(self) -> None:
        if self.lesion_parameters.segmentation is None:
            raise ValueError("load a lesion mask to correct first")

    def set_tool(self, tool: str) -> None:
        """'paint', 'erase', 'threshold' or 'none': trame-slicer's Segment Editor effects."""
        def run():
            from trame_slicer.segmentation import (
                SegmentationEffectErase,
                SegmentationEffectPaint,
                SegmentationEffectThreshold,
            )

            self._editor_ready()
            editor = self.slicer.segmentation_editor
            effects = {"paint": SegmentationEffectPaint, "erase": SegmentationEffectErase,
                       "threshold": SegmentationEffectThreshold}
            if tool not in effects:
                editor.deactivate_effect()
                self.state.tool = "none"
                return
            effect = editor.set_active_effect_type(effects[tool])
            if tool in ("paint", "erase"):
                from trame_slicer.segmentation.paint_effect_parameters import BrushDiameterMode

                effect.set_brush_diameter(float(self.state.brush_mm), BrushDiameterMode.Absolute)
            else:
                effect.set_threshold_min_max_values(tuple(float(v) for v in self.state.threshold_range))
            self.state.tool = tool
        self._guard(run)

    def _on_brush(self, brush_mm, **_):
        effect = self.slicer.segmentation_editor.active_effect
        if effect is not None and hasattr(effect, "set_brush_diameter"):
            from trame_slicer.segmentation.paint_effect_parameters import BrushDiameterMode

            effect.set_brush_diameter(float(brush_mm), BrushDiameterMode.Absolute)

    def _on_active_segment(self, active_segment, **_):
        if active_segment and self.lesion_parameters.segmentation is not None:
            self.slicer.segmentation_editor.set_active_segment_id(active_segment)

    def apply_threshold(self) -> None:
        """Fill the active segment with the voxels inside the HU range (the threshold effect's Apply)."""
        def run():
            effect = self.slicer.segmentation_editor.active_effect
            if self.state.tool != "threshold" or effect is None:
                raise ValueError("choose the threshold tool first")
            effect.set_threshold_min_max_values(tuple(float(v) for v in self.state.threshold_range))
            effect.apply()
            self.say("threshold applied to the active segment")
        self._guard(run)

    def save_correction(self) -> None:
        """Write the CT and the corrected mask as images/CASE.nii.gz and masks/CASE.nii.gz of the dataset."""
        def run():
            self._editor_ready()
            self.lesion_parameters.caseId = str(self.state.case_id or "").strip()
            image, mask = self.lesion_logic.save_correction(self.lesion_parameters)
            self.state.saved = f"saved {mask.parent.parent.name}/{mask.parent.name}/{mask.name}"
            self.say(f"correction saved: {image} and {mask}")
        self._guard(run)

    def shutdown(self) -> None:
        """Stop what runs in the background (the analysis and a pseudo-mask: their whole process trees) and drop
        the waiting requests; called when the server stops."""
        for request in list(self.queue.waiting):
            self.queue.cancel(request)
        self.queue.cancel()
        if self._pseudo_running:
            self.lesion_logic.cancel()
            self._pseudo_running = False

    # -- timer ---------------------------------------------------------------------------------------------------
    def _start_polling(self, **_) -> None:
        async def loop():
            while True:
                await asyncio.sleep(POLL_S)
                try:
                    with self.state:
                        self._poll()
                except Exception as exc:  # noqa: BLE001 - the page shows it; the server keeps serving
                    with self.state:
                        self.say(f"internal error: {type(exc).__name__}: {exc}", "error")
        asyncio.get_event_loop().create_task(loop())

