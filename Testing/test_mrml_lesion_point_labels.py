"""The lesion point list labels only the largest lesions (mrml/markups.py): dozens of small components (many small
lesions, coarse pixels) covered the 3-D view with their labels; the others are glyphs whose description keeps the
title. The labels are short (GGO; the side without "lung"): the full titles ran off the view's edge."""

from __future__ import annotations

import pytest

pytest.importorskip("slicer")

from CovidCTAnalysis.mrml.markups import LABELLED_POINTS, LesionPoint, add_lesion_markups, markup_points  # noqa: E402
from CovidCTAnalysis.mrml.scene import new_scene  # noqa: E402


def test_only_the_largest_lesions_are_labelled_and_every_point_keeps_its_title():
    scene = new_scene().scene
    count = LABELLED_POINTS + 7
    # given smallest first: the rule ranks by volume, not by the order of the list
    points = [LesionPoint(1, "ground-glass opacity", (float(n), 0.0, 0.0), 0.1 * (n + 1), "right")
              for n in range(count)]
    node = add_lesion_markups(scene, points)
    labels = [node.GetNthControlPointLabel(n) for n in range(count)]
    assert [bool(text) for text in labels] == [n >= count - LABELLED_POINTS for n in range(count)]
    assert labels[-1] == points[-1].label_text == "GGO, right, 1.7 mL"
    assert [title for title, _ in markup_points(node)] == [p.title for p in points]
    assert node.GetNthControlPointDescription(0).startswith(points[0].title + "; label 1; volume_ml 0.100")


def test_a_few_lesions_are_all_labelled():
    node = add_lesion_markups(new_scene().scene, [LesionPoint(2, "consolidation", (0.0, 0.0, 0.0), 1.0, "left")])
    assert node.GetNthControlPointLabel(0) == "consolidation, left, 1.0 mL"
    assert markup_points(node)[0][0] == "consolidation, left lung, 1.0 mL"  # the description keeps the full title
