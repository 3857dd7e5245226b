"""Plots for the report: images embedded as they are, data files (CSV/TSV/JSON) drawn by plots.canvas."""

from cml_action.plots.render import RenderedPlot, render_plot
from cml_action.plots.spec import IMAGE_SUFFIXES, PlotFile, PlotSpec, parse_plot_entries

__all__ = ["IMAGE_SUFFIXES", "PlotFile", "PlotSpec", "RenderedPlot", "parse_plot_entries", "render_plot"]
