"""Kibana saved objects as code: generate, validate and import ``dashboards/mdde.ndjson``.

The objects are generated from ``panels.PANELS`` with stable ids (``mdde-<kind>`` data views,
``mdde-vis-<panel>`` visualizations, ``mdde-dashboard-<name>``), so importing with ``overwrite``
replaces the previous version instead of adding copies. Visualizations are classic
aggregation-based ones (xy and heatmap), which Kibana 9 still imports and draws: their
``visState`` is plain JSON whose aggregations ``visstate_query`` turns back into the
Elasticsearch query Kibana would send, which is how the tests prove each panel shows data without
a running Kibana. (A Lens panel keeps its query in a datasource state that only Kibana itself
turns into a search, so it could not be checked here.)

The objects carry Kibana 9's saved-object versions: ``coreMigrationVersion`` 8.8.0 (the last one;
since 8.8 each type has its own ``typeMigrationVersion``, and model versions 10.x for the
dashboard). Kibana migrates an object of an older type version up on import and refuses a newer
one, so each type states the version whose attribute shape it is written in.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from mdde_stream.config import redact_url
from mdde_stream.telemetry.documents import KINDS
from mdde_stream.telemetry.errors import TelemetryError
from mdde_stream.telemetry.panels import DASHBOARDS, PANELS, Axis, Panel, panels_of
from mdde_stream.telemetry.templates import AGGREGATABLE_TYPES, field_type

logger = logging.getLogger(__name__)

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "dashboards" / "mdde.ndjson"
# The Kibana the objects are written for; compose/docker-compose.yml runs this version.
KIBANA_VERSION = "9.5.3"
CORE_MIGRATION_VERSION = "8.8.0"
TYPE_MIGRATION_VERSIONS = {"index-pattern": "8.0.0", "visualization": "8.5.0", "dashboard": "10.3.0"}
INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"
_VIS_TYPES = {"line": "line", "area_percent": "area", "bar": "histogram", "heatmap": "heatmap"}


class DashboardError(TelemetryError, ValueError):
    """The saved objects are inconsistent, or Kibana refused them."""


def data_view_id(kind: str) -> str:
    return f"mdde-{kind}"


def _meta(type_: str) -> dict[str, Any]:
    return {
        "coreMigrationVersion": CORE_MIGRATION_VERSION,
        "typeMigrationVersion": TYPE_MIGRATION_VERSIONS[type_],
        "managed": False,
    }


def data_view(kind: str, prefix: str = "mdde") -> dict[str, Any]:
    return {
        "id": data_view_id(kind),
        "type": "index-pattern",
        "attributes": {"title": f"{prefix}-{kind}-*", "name": f"MDDE {kind}", "timeFieldName": "@timestamp"},
        "references": [],
        **_meta("index-pattern"),
    }


def _bucket(agg_id: str, axis: Axis, schema: str) -> dict[str, Any]:
    if axis.agg == "histogram":
        params: dict[str, Any] = {"field": axis.field, "interval": axis.interval, "min_doc_count": False,
                                  "extended_bounds": {}, "has_extended_bounds": False}
    else:
        params = {"field": axis.field, "size": axis.size, "order": "asc", "orderBy": "_key",
                  "otherBucket": False, "missingBucket": False}
    if schema == "split":
        params["row"] = True
    return {"id": agg_id, "enabled": True, "type": axis.agg, "params": params, "schema": schema}


def _xy_params(panel: Panel, chart: str) -> dict[str, Any]:
    percent = panel.chart == "area_percent"
    return {
        "type": chart,
        "grid": {"categoryLines": False},
        "categoryAxes": [{"id": "CategoryAxis-1", "type": "category", "position": "bottom", "show": True,
                          "scale": {"type": "linear"}, "labels": {"show": True, "filter": True, "truncate": 100},
                          "title": {"text": panel.x.label}}],
        "valueAxes": [{"id": "ValueAxis-1", "name": "LeftAxis-1", "type": "value", "position": "left",
                       "show": True, "scale": {"type": "linear", "mode": "percentage" if percent else "normal"},
                       "labels": {"show": True, "rotate": 0, "filter": False, "truncate": 100},
                       "title": {"text": panel.metric_label}}],
        "seriesParams": [{"show": True, "type": chart, "mode": "stacked" if percent else "normal",
                          "data": {"label": panel.metric_label, "id": "1"}, "valueAxis": "ValueAxis-1",
                          "drawLinesBetweenPoints": True, "lineWidth": 2, "showCircles": True,
                          "interpolate": "linear"}],
        "addTooltip": True, "addLegend": True, "legendPosition": "right", "times": [], "addTimeMarker": False,
        "thresholdLine": {"show": False, "value": 0, "width": 1, "style": "full", "color": "#E7664C"},
        "labels": {}, "detailedTooltip": True, "palette": {"type": "palette", "name": "default"},
    }


def _heatmap_params() -> dict[str, Any]:
    return {
        "type": "heatmap", "addTooltip": True, "addLegend": True, "enableHover": False,
        "legendPosition": "right", "times": [], "colorsNumber": 6, "colorSchema": "Greens",
        "setColorRange": False, "colorsRange": [], "invertColors": False, "percentageMode": False,
        "valueAxes": [{"show": False, "id": "ValueAxis-1", "type": "value",
                       "scale": {"type": "linear", "defaultYExtents": False},
                       "labels": {"show": False, "rotate": 0, "overwriteColor": False, "color": "black"}}],
    }


def vis_state(panel: Panel) -> dict[str, Any]:
    chart = _VIS_TYPES[panel.chart]
    metric_params = {} if panel.metric == "count" else {"field": panel.field}
    aggs = [{"id": "1", "enabled": True, "type": panel.metric, "params": metric_params, "schema": "metric"}]
    if panel.split is not None:
        aggs.append(_bucket("4", panel.split, "split"))
    aggs.append(_bucket("2", panel.x, "segment"))
    if panel.group is not None:
        aggs.append(_bucket("3", panel.group, "group"))
    params = _heatmap_params() if chart == "heatmap" else _xy_params(panel, chart)
    return {"title": panel.title, "type": chart, "aggs": aggs, "params": params}


def visualization(panel: Panel) -> dict[str, Any]:
    search = {"query": {"query": "", "language": "kuery"}, "filter": [], "indexRefName": INDEX_REF}
    return {
        "id": f"mdde-vis-{panel.id}",
        "type": "visualization",
        "attributes": {
            "title": panel.title,
            "description": panel.description,
            "version": 1,
            "uiStateJSON": "{}",
            "visState": json.dumps(vis_state(panel), sort_keys=True),
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(search, sort_keys=True)},
        },
        "references": [{"name": INDEX_REF, "type": "index-pattern", "id": data_view_id(panel.kind)}],
        **_meta("visualization"),
    }


def dashboard(name: str) -> dict[str, Any]:
    panels, refs = [], []
    for i, panel in enumerate(panels_of(name)):
        ref = f"panel_{i}"
        grid = {"x": 24 * (i % 2), "y": 15 * (i // 2), "w": 24, "h": 15, "i": str(i)}
        panels.append({"type": "visualization", "gridData": grid, "panelIndex": str(i),
                       "embeddableConfig": {}, "panelRefName": ref})
        refs.append({"name": ref, "type": "visualization", "id": f"mdde-vis-{panel.id}"})
    search = {"query": {"query": "", "language": "kuery"}, "filter": []}
    return {
        "id": f"mdde-dashboard-{name}",
        "type": "dashboard",
        "attributes": {
            "title": f"MDDE {DASHBOARDS[name]}",
            "description": f"mdde-stream {DASHBOARDS[name].lower()} telemetry (generated from panels.py)",
            "hits": 0,
            "version": 1,
            "timeRestore": False,
            "panelsJSON": json.dumps(panels, sort_keys=True),
            "optionsJSON": json.dumps({"useMargins": True, "syncColors": False, "hidePanelTitles": False}),
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(search, sort_keys=True)},
        },
        "references": refs,
        **_meta("dashboard"),
    }


def saved_objects() -> list[dict[str, Any]]:
    """Data views, then visualizations, then dashboards (the order Kibana resolves references in)."""
    return [
        *(data_view(kind) for kind in KINDS),
        *(visualization(panel) for panel in PANELS),
        *(dashboard(name) for name in DASHBOARDS),
    ]


def render_ndjson() -> str:
    return "".join(json.dumps(obj, sort_keys=True) + "\n" for obj in saved_objects())


def write_ndjson(path: Path = DEFAULT_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_ndjson())
    return path


def load_ndjson(path: Path = DEFAULT_PATH) -> list[dict[str, Any]]:
    objects = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            objects.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DashboardError(f"{path}:{n}: not JSON: {exc}") from None
    return objects


# -- validation -----------------------------------------------------------------------------------
def kind_of_data_view(obj: dict[str, Any]) -> str | None:
    """``mdde-steps-*`` -> ``steps``, or None if the title names no known kind."""
    title = obj["attributes"]["title"]
    for kind in KINDS:
        if title.endswith(f"-{kind}-*"):
            return kind
    return None


def panel_fields(state: dict[str, Any]) -> list[str]:
    return [a["params"]["field"] for a in state["aggs"] if a.get("enabled", True) and "field" in a["params"]]


def validate(objects: list[dict[str, Any]]) -> list[str]:
    """Every problem found: duplicate ids, dangling references, fields missing or not aggregatable."""
    problems: list[str] = []
    by_id: dict[tuple[str, str], dict[str, Any]] = {}
    for obj in objects:
        key = (obj.get("type", "?"), obj.get("id", "?"))
        if key in by_id:
            problems.append(f"duplicate saved object {key[0]}:{key[1]}")
        by_id[key] = obj
    for (type_, id_), obj in by_id.items():
        problems += _validate_shape(obj)
        for ref in obj.get("references", []):
            if (ref["type"], ref["id"]) not in by_id:
                problems.append(f"{type_}:{id_} references missing {ref['type']}:{ref['id']}")
        if type_ == "index-pattern" and kind_of_data_view(obj) is None:
            problems.append(f"data view {id_} ({obj['attributes']['title']}) matches no index template")
        if type_ == "visualization":
            problems += _validate_visualization(obj, by_id)
        if type_ == "dashboard":
            names = {r["name"] for r in obj.get("references", [])}
            for panel in json.loads(obj["attributes"]["panelsJSON"]):
                if panel.get("panelRefName") not in names:
                    problems.append(f"dashboard {id_}: panel {panel.get('panelIndex')} has no reference")
    return problems


_GRID_KEYS = {"x", "y", "w", "h", "i"}


def _validate_shape(obj: dict[str, Any]) -> list[str]:
    """The saved-object envelope and panel layout Kibana 9 imports (not 7.x's ``migrationVersion``)."""
    type_, id_ = obj.get("type", "?"), obj.get("id", "?")
    problems = []
    if type_ not in TYPE_MIGRATION_VERSIONS:
        return [f"{type_}:{id_}: type {type_!r} is not one this file is written for"]
    if "migrationVersion" in obj:
        problems.append(f"{type_}:{id_}: has a 7.x migrationVersion; Kibana 9 objects use typeMigrationVersion")
    if obj.get("coreMigrationVersion") != CORE_MIGRATION_VERSION:
        problems.append(f"{type_}:{id_}: coreMigrationVersion {obj.get('coreMigrationVersion')!r}, "
                        f"expected {CORE_MIGRATION_VERSION}")
    if obj.get("typeMigrationVersion") != TYPE_MIGRATION_VERSIONS[type_]:
        problems.append(f"{type_}:{id_}: typeMigrationVersion {obj.get('typeMigrationVersion')!r}, "
                        f"expected {TYPE_MIGRATION_VERSIONS[type_]}")
    if type_ == "dashboard":
        for panel in json.loads(obj["attributes"].get("panelsJSON", "[]")):
            if "version" in panel:
                problems.append(f"dashboard {id_}: panel {panel.get('panelIndex')} has a 7.x per-panel version")
            if set(panel.get("gridData", {})) < _GRID_KEYS:
                problems.append(f"dashboard {id_}: panel {panel.get('panelIndex')} gridData lacks x, y, w, h or i")
    return problems


def _validate_visualization(obj: dict[str, Any], by_id: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    id_ = obj["id"]
    refs = [r for r in obj.get("references", []) if r["name"] == INDEX_REF]
    if len(refs) != 1 or ("index-pattern", refs[0]["id"]) not in by_id:
        return [f"visualization {id_} has no data view"]
    kind = kind_of_data_view(by_id[("index-pattern", refs[0]["id"])])
    if kind is None:
        return []
    problems = []
    state = json.loads(obj["attributes"]["visState"])
    for field in panel_fields(state):
        ftype = field_type(kind, field)
        if ftype is None:
            problems.append(f"visualization {id_}: field {field!r} is not in the {kind} index template")
        elif ftype not in AGGREGATABLE_TYPES:
            problems.append(f"visualization {id_}: field {field!r} is {ftype}, which cannot be aggregated")
    if not any(a["schema"] == "metric" for a in state["aggs"]):
        problems.append(f"visualization {id_}: no metric aggregation")
    return problems


# -- the query behind a panel ---------------------------------------------------------------------
_ORDER = {"split": 0, "segment": 1, "group": 2}


def visstate_query(state: dict[str, Any], query: dict[str, Any] | None = None) -> dict[str, Any]:
    """The search Kibana sends for an aggregation-based visualization (split → x → group → metric)."""
    aggs = [a for a in state["aggs"] if a.get("enabled", True)]
    metrics = [a for a in aggs if a["schema"] == "metric"]
    buckets = sorted((a for a in aggs if a["schema"] in _ORDER), key=lambda a: _ORDER[a["schema"]])
    leaf: dict[str, Any] = {
        m["id"]: {m["type"]: {"field": m["params"]["field"]}} for m in metrics if m["type"] != "count"
    }
    for bucket in reversed(buckets):
        p = bucket["params"]
        if bucket["type"] == "histogram":
            body: dict[str, Any] = {"histogram": {"field": p["field"], "interval": p["interval"], "min_doc_count": 1}}
        elif bucket["type"] == "terms":
            body = {"terms": {"field": p["field"], "size": p["size"], "order": {"_key": p.get("order", "asc")}}}
        else:
            raise DashboardError(f"bucket aggregation {bucket['type']!r} is not supported here")
        if leaf:
            body["aggs"] = leaf
        leaf = {bucket["id"]: body}
    return {"size": 0, "query": query or {"match_all": {}}, "aggs": leaf}


def leaf_values(state: dict[str, Any], response: dict[str, Any]) -> list[float]:
    """The metric value of every non-empty leaf bucket of a ``visstate_query`` response."""
    metric = next(a for a in state["aggs"] if a["schema"] == "metric")

    def walk(node: dict[str, Any]) -> list[float]:
        child = next((v for k, v in node.items() if isinstance(v, dict) and "buckets" in v), None)
        if child is not None:
            return [x for b in child["buckets"] for x in walk(b)]
        if metric["type"] == "count":
            return [float(node.get("doc_count", 0))] if node.get("doc_count", 0) else []
        value = node.get(metric["id"], {}).get("value")
        return [] if value is None else [float(value)]

    return walk(response.get("aggregations", {}))


# -- import ---------------------------------------------------------------------------------------
def _multipart(filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = f"mdde-{uuid.uuid4().hex}"
    body = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/ndjson\r\n\r\n"
    ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def import_dashboards(kibana_url: str, path: Path = DEFAULT_PATH, timeout_s: float = 60.0) -> dict[str, Any]:
    """POST the ndjson to Kibana's saved-objects import API, overwriting objects with the same ids."""
    if not kibana_url:
        raise DashboardError("no Kibana URL: pass --kibana http://host:5601 or set MDDE_KIBANA")
    problems = validate(load_ndjson(path))
    if problems:
        raise DashboardError(f"{path} is invalid: " + "; ".join(problems))
    body, content_type = _multipart(path.name, path.read_bytes())
    request = urllib.request.Request(
        f"{kibana_url.rstrip('/')}/api/saved_objects/_import?overwrite=true",
        data=body, method="POST", headers={"kbn-xsrf": "true", "Content-Type": content_type},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            result = json.load(response)
    except urllib.error.HTTPError as exc:
        raise DashboardError(f"Kibana at {redact_url(kibana_url)} refused the import: {exc.code} {exc.read()[:500]!r}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DashboardError(f"Kibana at {redact_url(kibana_url)} is not reachable: {exc}") from exc
    if not result.get("success", False):
        raise DashboardError(f"Kibana import reported errors: {json.dumps(result.get('errors', []))[:1000]}")
    logger.info("imported %s saved objects into %s", result.get("successCount"), redact_url(kibana_url))
    return result


if __name__ == "__main__":  # python -m mdde_stream.telemetry.dashboards  -> regenerate the committed file
    print(write_ndjson())
