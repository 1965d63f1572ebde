"""The Elasticsearch node's files: module descriptor and data left by another major version."""

from __future__ import annotations

from pathlib import Path

from mdde_stream.stack.base import StackLayout
from mdde_stream.stack.elasticsearch_node import NETTY4_CLASS, ElasticsearchNode, es_version


def _node(tmp_path: Path) -> ElasticsearchNode:
    node = ElasticsearchNode(StackLayout(tmp_path), 9299)
    node.home.mkdir(parents=True)
    return node


def test_data_of_elasticsearch_7_is_moved_aside_once(tmp_path: Path) -> None:
    node = _node(tmp_path)
    shard = node.home / "data" / "nodes" / "0" / "indices"
    shard.mkdir(parents=True)
    (shard / "segment").write_text("7.17")
    moved = node.retire_old_data()
    assert moved is not None and moved.name.startswith("data-es7.17-")
    assert (moved / "nodes" / "0" / "indices" / "segment").read_text() == "7.17"
    assert list((node.home / "data").iterdir()) == []
    assert node.version_stamp.read_text().strip() == es_version()
    (node.home / "data" / "_state").mkdir()
    assert node.retire_old_data() is None, "data of the current version must stay"
    assert (node.home / "data" / "_state").is_dir()


def test_data_of_another_stamped_major_is_moved_and_same_major_kept(tmp_path: Path) -> None:
    node = _node(tmp_path)
    (node.home / "data" / "_state").mkdir(parents=True)
    node.version_stamp.write_text("8.19.21\n")
    moved = node.retire_old_data()
    assert moved is not None and moved.name.startswith("data-es8.19.21-")
    major = es_version().split(".")[0]
    node.version_stamp.write_text(f"{major}.0.0\n")
    (node.home / "data" / "_state").mkdir()
    assert node.retire_old_data() is None
    assert (node.home / "data" / "_state").is_dir()


def test_an_empty_home_is_left_alone(tmp_path: Path) -> None:
    node = _node(tmp_path)
    assert node.retire_old_data() is None
    assert {p.name for p in node.home.iterdir()} == {"data", "es-version"}


def test_netty4_descriptor_loads_on_a_plain_class_loader(tmp_path: Path) -> None:
    text = _node(tmp_path).plugin_descriptor()
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    assert fields["classname"] == NETTY4_CLASS
    assert fields["elasticsearch.version"] == fields["version"] == es_version()
    assert "modulename" not in fields, "a named module would need the server as a named module too"
