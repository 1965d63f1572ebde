"""Kibana saved objects: the committed ndjson is current, parses, and every panel aggregates real fields."""

from __future__ import annotations

import email
import json

from mdde_stream.telemetry.dashboards import (
    CORE_MIGRATION_VERSION,
    DEFAULT_PATH,
    TYPE_MIGRATION_VERSIONS,
    _multipart,
    kind_of_data_view,
    load_ndjson,
    panel_fields,
    render_ndjson,
    validate,
    visstate_query,
)
from mdde_stream.telemetry.documents import KINDS
from mdde_stream.telemetry.panels import DASHBOARDS, PANELS
from mdde_stream.telemetry.templates import AGGREGATABLE_TYPES, field_type


def test_committed_ndjson_is_current() -> None:
    assert DEFAULT_PATH.read_text() == render_ndjson(), "run `mdde-stream dashboards export` and commit"


def test_ndjson_parses_and_validates() -> None:
    objects = load_ndjson()
    assert validate(objects) == []
    types = [o["type"] for o in objects]
    assert types.count("index-pattern") == len(KINDS)
    assert types.count("visualization") == len(PANELS)
    titles = {o["attributes"]["title"] for o in objects if o["type"] == "dashboard"}
    assert titles == {f"MDDE {t}" for t in DASHBOARDS.values()}


def test_every_panel_field_is_aggregatable_in_its_template() -> None:
    objects = load_ndjson()
    views = {o["id"]: kind_of_data_view(o) for o in objects if o["type"] == "index-pattern"}
    for vis in (o for o in objects if o["type"] == "visualization"):
        kind = views[vis["references"][0]["id"]]
        state = json.loads(vis["attributes"]["visState"])
        fields = panel_fields(state)
        assert fields, vis["id"]
        for field in fields:
            assert field_type(kind, field) in AGGREGATABLE_TYPES, f"{vis['id']}: {kind}.{field}"


def test_lines_split_by_agent_node_or_run() -> None:
    """Scaled runs must not collapse into one line: every xy panel has a group (series) split."""
    for vis in (o for o in load_ndjson() if o["type"] == "visualization"):
        state = json.loads(vis["attributes"]["visState"])
        groups = [a["params"]["field"] for a in state["aggs"] if a["schema"] in ("group", "split")]
        assert groups, f"{vis['id']} has no series split"


def test_validation_catches_bad_fields_and_dangling_references() -> None:
    objects = load_ndjson()
    vis = next(o for o in objects if o["id"] == "mdde-vis-storage")
    state = json.loads(vis["attributes"]["visState"])
    state["aggs"][0]["params"]["field"] = "message"  # not in the nodes template
    vis["attributes"]["visState"] = json.dumps(state)
    objects = [o for o in objects if o["id"] != "mdde-reads"]
    problems = validate(objects)
    assert any("field 'message' is not in the nodes index template" in p for p in problems)
    assert any("mdde-vis-reads-heatmap references missing index-pattern:mdde-reads" in p for p in problems)


def test_visstate_query_nests_split_x_group_metric() -> None:
    vis = next(o for o in load_ndjson() if o["id"] == "mdde-vis-action-outcomes")
    query = visstate_query(json.loads(vis["attributes"]["visState"]))
    split = query["aggs"]["4"]
    assert split["terms"]["field"] == "agent"
    assert split["aggs"]["2"]["histogram"]["field"] == "step"
    assert split["aggs"]["2"]["aggs"]["3"]["terms"]["field"] == "outcome"


def test_import_body_is_a_multipart_file_upload() -> None:
    body, content_type = _multipart("mdde.ndjson", b'{"a":1}\n')
    message = email.message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    (part,) = message.get_payload()
    assert part.get_param("name", header="content-disposition") == "file"
    assert part.get_filename() == "mdde.ndjson"
    assert part.get_payload(decode=True).rstrip(b"\r\n") == b'{"a":1}\n'.rstrip(b"\n")


def test_objects_have_the_kibana_9_shape() -> None:
    objects = load_ndjson()
    for obj in objects:
        assert obj["coreMigrationVersion"] == CORE_MIGRATION_VERSION, obj["id"]
        assert obj["typeMigrationVersion"] == TYPE_MIGRATION_VERSIONS[obj["type"]], obj["id"]
        assert "migrationVersion" not in obj, f"{obj['id']} carries the 7.x migrationVersion"
    for dash in (o for o in objects if o["type"] == "dashboard"):
        for panel in json.loads(dash["attributes"]["panelsJSON"]):
            assert "version" not in panel
            assert set(panel["gridData"]) == {"x", "y", "w", "h", "i"}
            assert panel["type"] == "visualization" and panel["panelRefName"].startswith("panel_")


def test_validation_refuses_a_kibana_7_export() -> None:
    objects = load_ndjson()
    view = next(o for o in objects if o["type"] == "index-pattern")
    del view["typeMigrationVersion"]
    view["coreMigrationVersion"] = "7.17.0"
    view["migrationVersion"] = {"index-pattern": "7.11.0"}
    dash = next(o for o in objects if o["type"] == "dashboard")
    panels = json.loads(dash["attributes"]["panelsJSON"])
    panels[0]["version"] = "7.17.0"
    dash["attributes"]["panelsJSON"] = json.dumps(panels)
    problems = validate(objects)
    assert any(f"index-pattern:{view['id']}: has a 7.x migrationVersion" in p for p in problems)
    assert any(f"index-pattern:{view['id']}: coreMigrationVersion '7.17.0'" in p for p in problems)
    assert any(f"index-pattern:{view['id']}: typeMigrationVersion None" in p for p in problems)
    assert any(f"dashboard {dash['id']}: panel 0 has a 7.x per-panel version" in p for p in problems)
