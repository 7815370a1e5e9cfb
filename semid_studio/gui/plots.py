"""pyqtgraph plots: code usage per level, the embedding map, live loss curves, run comparison.

Plot items are created once and updated with ``setData`` (pyqtgraph's fast path); live curves
are redrawn from a buffer on a 10 Hz timer, never once per incoming event.
"""

from __future__ import annotations

import colorsys
import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QToolTip

from ..core.analysis.compare import RunComparison
from ..core.analysis.items import format_value
from ..core.analysis.maps import Projection
from ..core.analysis.nodes import usage_stats

pg.setConfigOptions(antialias=False, background="w", foreground="k")


def code_colors(n: int) -> list[QColor]:
    """``n`` well separated colours (golden-ratio hues), the same for the same code every time."""
    colors = []
    for i in range(n):
        hue = (i * 0.618033988749895) % 1.0
        light = 0.45 if i % 2 else 0.55
        r, g, b = colorsys.hls_to_rgb(hue, light, 0.75)
        colors.append(QColor(int(r * 255), int(g * 255), int(b * 255)))
    return colors


def _level_name(level: int, n_levels: int) -> str:
    if level == n_levels:
        return "dedup level"
    return f"level {level + 1} ({chr(ord('a') + level)})"


class CodeUsagePlot(pg.GraphicsLayoutWidget):
    """One bar chart per level: how many items use each code (gaps are dead codes).

    The counts are computed when a run arrives; the charts are drawn when the widget is shown
    (plot items are costly to create, so a run that is never looked at costs nothing) and are
    reused, updated with ``setOpts``, when the next run has as many levels.
    """

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._plots: list[pg.PlotItem] = []
        self._bars: list[pg.BarGraphItem] = []
        self._means: list[pg.InfiniteLine | None] = []
        self._levels: list[tuple[np.ndarray, str, bool]] = []  # (counts, title, semantic level?)
        self._dirty = False
        self.summaries: list[str] = []

    def set_codes(self, codes: np.ndarray | None, codebook_size: int | None = None) -> None:
        """Show the usage of every level of ``codes`` (``(n, L + 1)``; None clears)."""
        self._levels = []
        if codes is not None and len(codes):
            n_levels = codes.shape[1] - 1
            for level in range(codes.shape[1]):
                column = codes[:, level].astype(np.int64)
                size = int(column.max()) + 1
                if level < n_levels and codebook_size:
                    size = max(size, codebook_size)
                counts = np.bincount(column, minlength=size)
                stats = usage_stats(counts)
                title = (f"{_level_name(level, n_levels)}: {stats.n_children} of {size} codes used, "
                         f"entropy {stats.entropy_bits:.2f} bits (evenness {stats.evenness:.2f})")
                self._levels.append((counts, title, level < n_levels))
        self.summaries = [title for _c, title, _s in self._levels]
        self._dirty = True
        if self.isVisible():
            self._render()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._dirty:
            self._render()
        super().showEvent(event)

    @property
    def drawn_levels(self) -> int:
        return 0 if self._dirty else len(self._plots)

    def _render(self) -> None:
        self._dirty = False
        if len(self._plots) != len(self._levels):
            self.clear()
            self._plots, self._bars, self._means = [], [], []
            for row in range(len(self._levels)):
                plot = self.addPlot(row=row, col=0)
                plot.setLabel("left", "items")
                plot.showGrid(y=True, alpha=0.3)
                plot.setMouseEnabled(y=False)
                bars = pg.BarGraphItem(x=[0], height=[0], width=0.9, brush=pg.mkBrush(70, 110, 190),
                                       pen=pg.mkPen(None))
                plot.addItem(bars)
                mean = pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen((200, 60, 60), style=Qt.DashLine))
                plot.addItem(mean)
                self._plots.append(plot)
                self._bars.append(bars)
                self._means.append(mean)
            if self._plots:
                self._plots[-1].setLabel("bottom", "code")
        layout = self.ci.layout
        for row, (plot, bars, mean, (counts, title, semantic)) in enumerate(
                zip(self._plots, self._bars, self._means, self._levels)):
            plot.setTitle(title)
            bars.setOpts(x=np.arange(len(counts)), height=counts, width=0.9)
            mean.setValue(counts.sum() / max(len(counts), 1))
            mean.setVisible(semantic)
            # the dedup level has a handful of codes: a smaller row, whole-number ticks
            plot.setXRange(-1, len(counts) if semantic else max(len(counts), 8), padding=0)
            plot.getAxis("bottom").setTickSpacing(None if semantic else 1, None if semantic else 1)
            plot.setYRange(0, max(1, int(counts.max())), padding=0.05)
            layout.setRowStretchFactor(row, 3 if semantic else 2)


class EmbeddingMapPlot(pg.PlotWidget):
    """A 2-D map of the item embeddings, coloured by groups (the largest level-1 codes or
    values of a field); hover shows the item."""

    #: the item under the mouse changed (idx, or -1 when none)
    hoveredItem = Signal(int)
    #: the user clicked a point (item idx)
    clickedItem = Signal(int)

    HOVER_RADIUS_PX = 6.0
    CHUNK = 3000  # points added per turn of the event loop

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.getPlotItem().hideAxis("left")
        self.getPlotItem().hideAxis("bottom")
        self.setAspectLocked(False)
        self._scatter = pg.ScatterPlotItem(size=4, pxMode=True, pen=None)
        self._marked = pg.ScatterPlotItem(size=9, pxMode=True, pen=pg.mkPen("k", width=1.2),
                                          brush=pg.mkBrush(255, 255, 255, 0))
        self._hover = pg.ScatterPlotItem(size=12, pxMode=True, pen=pg.mkPen("k", width=2), brush=None)
        for item in (self._scatter, self._marked, self._hover):
            self.addItem(item)
        self._legend = self.getPlotItem().addLegend(offset=(8, 8), labelTextSize="8pt")
        self._idx = np.zeros(0, dtype=np.int64)
        self._xy = np.zeros((0, 2), dtype=np.float32)
        self._titles = None
        self._level1 = None
        self._hovered = -1
        self._brushes: list = []
        self._drawn = 0
        self._draw_timer = QTimer(self)
        self._draw_timer.setInterval(0)
        self._draw_timer.timeout.connect(self._draw_chunk)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.scene().sigMouseClicked.connect(self._on_mouse_clicked)

    #: the colour of the points outside the named groups
    OTHER = QColor(200, 200, 200)

    def set_projection(self, projection: Projection | None, groups: np.ndarray | None = None,
                       names: list[str] | None = None, titles=None, level1: np.ndarray | None = None) -> None:
        """Draw ``projection`` coloured by ``groups`` (one int per item: a group of ``names``,
        -1 for the rest, drawn grey and underneath); None clears the map. The legend names
        the groups.

        The points are drawn when the map is shown, a few thousand per turn of the event loop,
        so that a 20,000-point map never holds the window for long.
        """
        self._draw_timer.stop()
        self._hovered = -1
        self._marked.setData([], [])
        self._hover.setData([], [])
        self._scatter.clear()
        self._legend.clear()
        self._drawn = 0
        if projection is None or len(projection.idx) == 0:
            self._idx = np.zeros(0, dtype=np.int64)
            self._xy = np.zeros((0, 2), dtype=np.float32)
            self._brushes = []
            return
        names = list(names or [])
        point_groups = np.asarray(groups)[projection.idx] if groups is not None else np.full(len(projection.idx), -1)
        order = np.argsort(point_groups >= 0, kind="stable")  # the grey "other" points first, underneath
        self._idx = projection.idx[order]
        self._xy = projection.xy[order]
        self._titles = titles
        self._level1 = level1  # shown in the hover text
        palette = [QBrush(c) for c in code_colors(max(1, len(names)))]
        other = QBrush(self.OTHER)
        self._brushes = [palette[g] if g >= 0 else other for g in point_groups[order].tolist()]
        for g, name in enumerate(names):
            self._legend.addItem(pg.ScatterPlotItem(size=8, pen=None, brush=palette[g]), name)
        if names and (point_groups < 0).any():
            self._legend.addItem(pg.ScatterPlotItem(size=8, pen=None, brush=other), "other")
        (x0, y0), (x1, y1) = self._xy.min(axis=0), self._xy.max(axis=0)
        self.setRange(xRange=(float(x0), float(x1)), yRange=(float(y0), float(y1)), padding=0.03)
        if self.isVisible():
            self._draw_timer.start()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._drawn < len(self._idx):
            self._draw_timer.start()
        super().showEvent(event)

    def _draw_chunk(self) -> None:
        start, stop = self._drawn, min(self._drawn + self.CHUNK, len(self._idx))
        if start < stop:
            self._scatter.addPoints(x=self._xy[start:stop, 0], y=self._xy[start:stop, 1],
                                    brush=self._brushes[start:stop])
        self._drawn = stop
        if stop >= len(self._idx):
            self._draw_timer.stop()

    @property
    def drawn_count(self) -> int:
        return self._drawn

    def mark_items(self, items: np.ndarray | None) -> None:
        """Outline these items (a selected tree node), if they are on the map."""
        if items is None or len(self._idx) == 0:
            self._marked.setData([], [])
            return
        shown = np.isin(self._idx, np.asarray(items))
        self._marked.setData(x=self._xy[shown, 0], y=self._xy[shown, 1])

    @property
    def point_count(self) -> int:
        return len(self._idx)

    def item_near(self, x: float, y: float, radius_px: float | None = None) -> int:
        """The item whose point is nearest to view coordinates ``(x, y)``, within a few pixels."""
        if len(self._idx) == 0:
            return -1
        radius = self.HOVER_RADIUS_PX if radius_px is None else radius_px
        px_w, px_h = self.getViewBox().viewPixelSize()
        dx = (self._xy[:, 0] - x) / max(px_w, 1e-12)
        dy = (self._xy[:, 1] - y) / max(px_h, 1e-12)
        dist = dx * dx + dy * dy
        best = int(np.argmin(dist))
        return int(self._idx[best]) if dist[best] <= radius * radius else -1

    def hover_text(self, item: int) -> str:
        title = "" if self._titles is None else format_value(self._titles[item])
        code = "" if self._level1 is None else f"<a_{int(self._level1[item])}>  "
        return f"{code}{title}"

    def point_of(self, item: int) -> tuple[float, float] | None:
        hits = np.flatnonzero(self._idx == item)
        if not len(hits):
            return None
        x, y = self._xy[hits[0]]
        return float(x), float(y)

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        vb = self.getViewBox()
        if not vb.sceneBoundingRect().contains(scene_pos):
            return
        point = vb.mapSceneToView(scene_pos)
        item = self.item_near(point.x(), point.y())
        if item != self._hovered:
            self._hovered = item
            if item < 0:
                self._hover.setData([], [])
                QToolTip.hideText()
            else:
                x, y = self.point_of(item)
                self._hover.setData([x], [y])
                global_pos = self.mapToGlobal(self.mapFromScene(scene_pos))
                QToolTip.showText(global_pos, self.hover_text(item), self)
            self.hoveredItem.emit(item)

    def _on_mouse_clicked(self, event) -> None:
        if self._hovered >= 0 and event.button() == Qt.LeftButton:
            self.clickedItem.emit(self._hovered)


class LossCurvePlot(pg.PlotWidget):
    """Live training curves: one line per metric name and split, redrawn at 10 Hz."""

    REFRESH_MS = 100

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        plot = self.getPlotItem()
        plot.setLabel("bottom", "step")
        plot.showGrid(x=True, y=True, alpha=0.3)
        plot.setDownsampling(auto=True, mode="peak")
        plot.setClipToView(True)
        self._legend = plot.addLegend(offset=(-10, 10))
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._data: dict[str, tuple[list[float], list[float]]] = {}
        self._dirty: set[str] = set()
        self._timer = QTimer(self)
        self._timer.setInterval(self.REFRESH_MS)
        self._timer.timeout.connect(self.refresh)

    def clear_curves(self) -> None:
        for curve in self._curves.values():
            self.getPlotItem().removeItem(curve)
            self._legend.removeItem(curve)
        self._curves.clear()
        self._data.clear()
        self._dirty.clear()

    def add_point(self, name: str, step: float, value: float) -> None:
        """Buffer one point; the timer draws it (so 1000 events a second cost one redraw)."""
        xs, ys = self._data.setdefault(name, ([], []))
        xs.append(float(step))
        ys.append(float(value))
        self._dirty.add(name)
        if not self._timer.isActive():
            self._timer.start()

    def series(self, name: str) -> tuple[list[float], list[float]]:
        return self._data.get(name, ([], []))

    @property
    def names(self) -> list[str]:
        return list(self._data)

    def refresh(self) -> None:
        if not self._dirty:
            self._timer.stop()  # idle until the next point arrives
            return
        colors = code_colors(len(self._data) + 1)
        for name in sorted(self._dirty):
            curve = self._curves.get(name)
            if curve is None:
                color = colors[len(self._curves)]
                style = Qt.DashLine if name.startswith("valid") or "val" in name.split("/")[0] else Qt.SolidLine
                # validations are a few points apart: markers, so one validation is visible too
                marks = {} if "running" in name else {"symbol": "o", "symbolSize": 7, "symbolBrush": color,
                                                      "symbolPen": color}
                curve = self.getPlotItem().plot(name=name, pen=pg.mkPen(color, width=2, style=style), **marks)
                self._curves[name] = curve
            xs, ys = self._data[name]
            curve.setData(np.asarray(xs), np.asarray(ys))
        self._dirty.clear()


class RunComparisonPlot(pg.PlotWidget):
    """Heat map: rows = level-1 groups of run A, columns = those of run B, row-normalised."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self._image = pg.ImageItem(axisOrder="row-major")
        self._image.setLookupTable(pg.colormap.get("viridis").getLookupTable(nPts=256))
        self.addItem(self._image)
        plot = self.getPlotItem()
        plot.invertY(True)
        plot.setLabel("left", "run A level-1 group (rows)")
        plot.setLabel("bottom", "run B level-1 group (columns, reordered)")
        self.matrix = None

    def set_comparison(self, comparison: RunComparison | None) -> None:
        if comparison is None:
            self._image.clear()
            self.matrix = None
            return
        m = comparison.matrix[:, comparison.column_order].astype(np.float64)
        m /= np.maximum(m.sum(axis=1, keepdims=True), 1)
        self.matrix = m
        self._image.setImage(m, levels=(0.0, 1.0))
        self.autoRange()
