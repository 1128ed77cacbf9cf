"""What a reader sees in a tutorial's figure, panel by panel, measured in the kernel that drew it: whether the
panel shows data, the notes written on it, its y range, and tick labels that overlap once drawn.

The notebook tests import this module in the kernel (``execute`` puts this folder on the kernel's path for
its check cell) and call it in their ``checks`` expression.

Example:
    >>> figure_checks.panels(merged_figure)  # doctest: +SKIP
    [{'xlabel': 'signal jet $p_T$ [GeV]', 'has_data': True, 'notes': [], 'ylim': [0.0, 300.0],
      'overlapping_ticks': []}, ...]
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.patches import Rectangle, StepPatch


def panels(figure) -> list[dict]:
    """One JSON-able report per axes of ``figure``, after drawing it."""
    if not hasattr(figure.canvas, "get_renderer"):
        FigureCanvasAgg(figure)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    return [
        {
            "xlabel": ax.get_xlabel(),
            "has_data": _has_data(ax),
            "notes": [text.get_text() for text in ax.texts if type(text).__module__.startswith("matplotlib")],
            "ylim": [float(limit) for limit in ax.get_ylim()],
            "overlapping_ticks": _overlapping_ticks(ax, renderer),
        }
        for ax in figure.axes
    ]


def _has_data(ax) -> bool:
    """Anything non-zero drawn: histogram steps, bars or lines."""
    values = [patch.get_data().values for patch in ax.patches if isinstance(patch, StepPatch)]
    values += [[patch.get_height()] for patch in ax.patches if isinstance(patch, Rectangle)]
    values += [line.get_ydata() for line in ax.lines]
    return any(np.any(np.nan_to_num(np.asarray(v, dtype=float)) != 0) for v in values)


def _overlapping_ticks(ax, renderer) -> list[list[str]]:
    """Pairs of visible tick labels of one axis whose drawn boxes intersect."""
    overlapping = []
    for axis in (ax.xaxis, ax.yaxis):
        labels = [label for label in axis.get_ticklabels() if label.get_visible() and label.get_text()]
        boxes = [label.get_window_extent(renderer) for label in labels]
        for (a, box_a), (b, box_b) in combinations(zip(labels, boxes, strict=True), 2):
            if box_a.overlaps(box_b):
                overlapping.append([a.get_text(), b.get_text()])
    return overlapping


def problems(reports: list[dict]) -> list[str]:
    """What a reader would stumble on in the panels reported by ``panels``: a panel with no data and no note
    saying why, a y axis below zero (counts are never negative), tick labels drawn over each other."""
    found = []
    for report in reports:
        name = report["xlabel"] or "a panel"
        if not report["has_data"] and not report["notes"]:
            found.append(f"{name}: no data and no note saying why")
        if report["ylim"][0] < 0:
            found.append(f"{name}: y axis from {report['ylim'][0]:g}")
        found.extend(f"{name}: tick labels {a!r} and {b!r} overlap" for a, b in report["overlapping_ticks"])
    return found
