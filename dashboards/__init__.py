"""The web dashboard over the search store: supernets, searches, Pareto fronts, candidates.

Server-rendered pages (:mod:`dashboards.pages`, templates and a stylesheet shipped as package
data) served by the REST service's app; the front is an inline SVG (:mod:`dashboards.plot`).
"""
