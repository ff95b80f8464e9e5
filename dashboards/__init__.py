"""The web dashboard over the search store: supernets, searches, Pareto fronts, candidates.

Server-rendered pages (:mod:`dashboards.pages`, templates and a stylesheet shipped as package
data); the front is an inline SVG (:mod:`dashboards.plot`), drawn interactively with plotly.js when the
browser runs JavaScript (:mod:`dashboards.chart`, ``static/*.js``). Every read goes through one module,
:mod:`dashboards.read_model`, the only one here that imports ``nas``. :mod:`webapp` serves the
pages beside the REST API (``pages.Dashboard``); nothing below imports this package.
"""
