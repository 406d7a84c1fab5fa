"""The page: a drawer with the radiologist's and the annotator's controls beside trame-slicer's four-up views.

Only layout and bindings live here: every button calls a method of ``app.CovidCTWebApp`` through a trame trigger, and
everything shown comes from the server's state. Elements tests and users refer to carry stable ids
(``covidct-analyze``, ``covidct-measurements``, ``covidct-heatmap-MODEL`` ...). Vuetify and its icon font are served by
trame itself: the page loads nothing from the internet.
"""

from __future__ import annotations


def _upload_handler(max_bytes_state: str = "max_upload_bytes") -> str:
    """JavaScript of the file input: a file above the limit is refused in the browser, before it is sent."""
    return (
        "const f = $event.target.files && $event.target.files[0]; "
        f"if (f && f.size > {max_bytes_state}) {{ message_type = 'error'; "
        f"message = f.name + ': ' + (f.size / 1e9).toFixed(1) + ' GB is larger than the upload limit of ' + "
        f"({max_bytes_state} / 1e9).toFixed(1) + ' GB; put the CT in the data folder of the server and open it by path'; "
        "$event.target.value = ''; } "
        "else if (f) { message_type = 'info'; message = 'uploading ' + f.name + ' ...'; "
        "trigger('covidct_upload', [$event.target.files]); }"
    )


def build_page(app):
    """The page of ``app`` (a ``CovidCTWebApp``); returns the trame layout."""
    from trame.ui.vuetify3 import SinglePageWithDrawerLayout
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    server = app.server
    with SinglePageWithDrawerLayout(server, full_height=True) as layout:
        layout.title.set_text("COVID-19 CT analysis (research use only)")
        layout.drawer.width = 440
        with layout.toolbar:
            v.VSpacer()
            with v.VBtnToggle(v_model=("page",), mandatory=True, density="compact", id="covidct-pages"):
                v.VBtn("Radiologist", value="radiologist", id="covidct-page-radiologist")
                v.VBtn("Annotator", value="annotator", id="covidct-page-annotator")
        with layout.drawer:
            with v.VContainer(classes="pa-2"):
                v.VAlert(text=("message",), type=("message_type",), v_show="message", density="compact",
                         id="covidct-message", classes="mb-2")
                _open_controls(v, html)
                with html.Div(v_show="page === 'radiologist'"):
                    _radiologist(v, html)
                with html.Div(v_show="page === 'annotator'"):
                    _annotator(v, html)
        with layout.content:
            with html.Div(style="position: relative; width: 100%; height: calc(100vh - 64px);",
                          id="covidct-views"):
                app.layout_manager.initialize_layout_grid(layout)
    return layout


def _open_controls(v, html) -> None:
    html.Div("CT: {{ ct_name || 'none open' }}", classes="text-subtitle-2 mb-1", id="covidct-ct-name")
    v.VBtn("Open the demo CT ({{ demo_label }})", click="trigger('covidct_load_demo')", block=True, color="primary",
           classes="mb-2", id="covidct-demo", disabled=("running",))
    html.Input(type="file", id="covidct-upload", accept=".nii,.nii.gz,.gz,.nrrd,.mha,.mhd,.dcm,.png,.jpg,.jpeg",
               change=_upload_handler(), style="max-width: 100%;", classes="mb-2")
    with html.Div(classes="d-flex align-center mb-2"):
        v.VTextField(v_model=("data_path",), label="path in the data folder", density="compact",
                     hide_details=True, id="covidct-path")
        v.VBtn("Open", click="trigger('covidct_open_path')", classes="ml-2", id="covidct-open-path")


def _radiologist(v, html) -> None:
    with html.Div(classes="d-flex mb-2"):
        v.VBtn("Analyze", click="trigger('covidct_analyze')", color="primary", disabled=("!ct_name",),
               id="covidct-analyze", classes="mr-2")
        v.VBtn("Cancel", click="trigger('covidct_cancel')", disabled=("!running",), id="covidct-cancel")
    v.VProgressLinear(model_value=("progress",), height=18, color="primary", id="covidct-progress",
                      children=["{{ progress }} %"])
    html.Div("{{ running ? stage : (analysis_done ? 'analysis finished' : '') }}"
             "{{ queued ? ' - ' + queued + ' queued' : '' }}", classes="text-caption mb-2", id="covidct-stage")
    with html.Div(v_show="analysis_done"):
        html.Div("Heatmaps (jet: blue low, red high; one at a time over the CT)", classes="text-subtitle-2 mt-2")
        with html.Div(id="covidct-heatmap-threshold"):
            v.VSlider(v_model=("heatmap_threshold",), min=0.05, max=0.95, step=0.05, label="show from",
                      thumb_label=True, density="compact", hide_details=True)
        with html.Div(v_for="h in heatmaps", key="h.model", classes="d-flex align-center",
                      id=("'covidct-heatmap-' + h.model",)):
            v.VSwitch(model_value=("h.visible",), label=("h.model",), density="compact", hide_details=True,
                      color="primary", update_modelValue="trigger('covidct_toggle_heatmap', [h.model])",
                      style="max-width: 170px;", classes="covidct-heatmap-toggle")
            v.VSlider(model_value=("h.opacity",), min=0, max=1, step=0.05, density="compact", hide_details=True,
                      end="trigger('covidct_heatmap_opacity', [h.model, $event])",
                      classes="covidct-heatmap-opacity")
        html.Div("{{ localization }}", classes="text-caption my-2", id="covidct-localization")
        with v.VTable(density="compact", id="covidct-measurements"):
            with html.Tbody():
                with html.Tr(v_for="(r, i) in rows", key="i"):
                    html.Td("{{ r.measurement }}")
                    html.Td("{{ r.value }} {{ r.unit }}", classes="text-right text-no-wrap")
                    html.Td("{{ r.note }}", classes="text-caption")
        html.Div("Files", classes="text-subtitle-2 mt-2")
        with html.Ul(id="covidct-downloads"):
            with html.Li(v_for="d in downloads", key="d.name"):
                html.A("{{ d.name }}", href=("d.url",), target="_blank", download=("d.name",))


def _annotator(v, html) -> None:
    with html.Div(classes="d-flex mb-2"):
        v.VBtn("Analysis lesions", click="trigger('covidct_use_analysis_mask')", id="covidct-use-analysis-mask",
               classes="mr-2", disabled=("!analysis_done",))
        v.VBtn("Pseudo-mask", click="trigger('covidct_pseudo_mask')", id="covidct-pseudo-mask",
               disabled=("!ct_name || running",))
    html.Div("{{ mask_name ? 'correcting: ' + mask_name : 'no mask loaded' }}", classes="text-caption mb-2",
             id="covidct-mask-name")
    v.VSelect(v_model=("active_segment",), items=("segments",), label="segment", density="compact",
              hide_details=True, classes="mb-2", id="covidct-segment")
    with v.VBtnToggle(model_value=("tool",), mandatory=True, density="compact", classes="mb-2", id="covidct-tools"):
        for tool, icon in (("none", "mdi-cursor-default"), ("paint", "mdi-brush"), ("erase", "mdi-eraser"),
                           ("threshold", "mdi-contrast-box")):
            v.VBtn(tool, value=tool, prepend_icon=icon, id=f"covidct-tool-{tool}", size="small",
                   click=f"trigger('covidct_set_tool', ['{tool}'])", disabled=("!mask_name",))
    v.VSlider(v_model=("brush_mm",), min=2, max=40, step=1, label="brush (mm)", density="compact",
              thumb_label=True, hide_details=True, v_show="tool === 'paint' || tool === 'erase'")
    with html.Div(v_show="tool === 'threshold'"):
        v.VRangeSlider(v_model=("threshold_range",), min=-1100, max=400, step=10, label="HU", thumb_label=True,
                       density="compact", hide_details=True)
        v.VBtn("Apply threshold", click="trigger('covidct_apply_threshold')", id="covidct-apply-threshold",
               classes="mb-2")
    with html.Div(classes="d-flex align-center mt-2"):
        v.VTextField(v_model=("case_id",), label="case id", density="compact", hide_details=True,
                     id="covidct-case-id")
        v.VBtn("Save correction", click="trigger('covidct_save_correction')", color="primary", classes="ml-2",
               id="covidct-save", disabled=("!mask_name",))
    html.Div("{{ saved }}", classes="text-caption mt-1", id="covidct-saved")
