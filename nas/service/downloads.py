"""Downloads of a search's candidates and front, as CSV or JSON, for the API and the dashboard alike.

Both read the same :class:`nas.store.CandidateQuery` (filtered and sorted by the database) and the
same front (:func:`nas.summary.search_front`), so a download holds what the page's table shows.
JSON is the API's own schema (``CandidateOut``, ``FrontOut``); CSV flattens it into one row per
candidate or point, metrics and the ratios to the teacher as columns.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from foundation.registry import Registry
from nas.reference import search_reference
from nas.store import CandidateQuery, CandidateStatus, InvalidValueError, SearchRecord, Store
from nas.summary import SearchFront, chart_objective, search_front

from . import schemas


@dataclass(frozen=True)
class Download:
    """A file to send: its bytes, media type and the name a browser saves it under."""

    body: bytes
    media_type: str
    filename: str


@dataclass(frozen=True)
class DownloadFormat:
    media_type: str
    write: Callable[[list[dict[str, Any]], Any], bytes]  # (flat rows, the JSON document) -> bytes


def _csv(rows: list[dict[str, Any]], document: Any) -> bytes:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _json(rows: list[dict[str, Any]], document: Any) -> bytes:
    return json.dumps(document, indent=1).encode("utf-8")


FORMATS: Registry[DownloadFormat] = Registry("download format", InvalidValueError)
FORMATS.register("csv", DownloadFormat("text/csv; charset=utf-8", _csv))
FORMATS.register("json", DownloadFormat("application/json", _json))


def front_configs(store: Store, search: SearchRecord, metric: str | None = None) -> frozenset[str]:
    """The configs on the search's front of ``metric`` (the chart's metric by default)."""
    front = search_front(search, store.candidates(search.id, CandidateStatus.DONE), chart_objective(search, metric))
    return frozenset(p.config for p in front.front)


def candidate_query(store: Store, search_id: int, status: CandidateStatus | str | None = None,
                    max_macs: int | None = None, front: bool = False, sort: str = "order",
                    descending: bool = False, metric: str | None = None) -> CandidateQuery:
    """The query of a candidates table or download: ``front`` keeps only the members of the front of ``metric``."""
    configs = front_configs(store, store.get_search(search_id), metric) if front else None
    return CandidateQuery(status or None, max_macs, configs, sort or "order", descending)


def _vs_columns(vs: dict[str, Any] | None) -> dict[str, Any]:
    if not vs:
        return {}
    columns = {"macs_vs_teacher": vs.get("macs_ratio"), "params_vs_teacher": vs.get("params_ratio")}
    for name, figures in (vs.get("metrics") or {}).items():
        columns[f"{name}_vs_teacher"] = figures.get("ratio")
    return columns


def _candidate_row(item: dict[str, Any], metric_names: Sequence[str]) -> dict[str, Any]:
    row = {key: item[key] for key in ("order", "config", "status", "macs", "params", "attempts", "lost",
                                      "eval_seconds", "evaluator", "error")}
    row.update({name: item["metrics"].get(name) for name in metric_names})
    return {**row, **_vs_columns(item.get("vs_teacher"))}


def candidates_download(store: Store, search_id: int, query: CandidateQuery, fmt: str) -> Download:
    """Every candidate ``query`` selects, in its order."""
    form = FORMATS.get(fmt)
    reference = search_reference(store, search_id)
    items = [schemas.CandidateOut.of(c, reference).model_dump(mode="json")
             for c in store.candidate_page(search_id, query).records]
    metric_names = sorted({name for item in items for name in item["metrics"]})
    rows = [_candidate_row(item, metric_names) for item in items]
    return Download(form.write(rows, items), form.media_type, f"search{search_id}-candidates.{fmt}")


def front_document(store: Store, search_id: int, metric: str | None = None) -> schemas.FrontOut:
    search = store.get_search(search_id)
    front: SearchFront = search_front(search, store.candidates(search_id, CandidateStatus.DONE),
                                      chart_objective(search, metric))
    return schemas.FrontOut.of(search, front, search_reference(store, search_id))


def front_download(store: Store, search_id: int, fmt: str, metric: str | None = None) -> Download:
    """The front's points (every done candidate with the metric, ``on_front`` marking the members), as
    ``GET /api/searches/{id}/front`` gives them."""
    form = FORMATS.get(fmt)
    document = front_document(store, search_id, metric).model_dump(mode="json")
    rows = [{"config": p["config"], "macs": p["macs"], "params": p["params"], document["metric"]: p["value"],
             "on_front": p["on_front"], **_vs_columns(p.get("vs_teacher"))} for p in document["points"]]
    return Download(form.write(rows, document), form.media_type, f"search{search_id}-front.{fmt}")

