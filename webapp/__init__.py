"""The web application ``ganas serve`` runs: the REST API of :mod:`nas.service` with the dashboard's pages.

Composed here, above both, because neither may know the other's builder: ``nas`` never imports
``dashboards``, and the dashboard only reads through its read model. :mod:`webapp.app` builds
the app; :mod:`webapp.serve` is the ``ganas serve`` command, a CLI plug-in declared in
``pyproject.toml`` (entry-point group ``ganas.commands``). Nothing in the project imports this
package. It imports nothing heavy itself, so the CLI can list the command quickly.
"""
