"""Choosing the JDK for the Elasticsearch node from the JDKs a machine has side by side."""

from __future__ import annotations

from pathlib import Path

import pytest

from mdde_stream.stack.jdk import find_jdk, java_major
from mdde_stream.stack.process import StackError


def _jdk(root: Path, name: str, version: str) -> Path:
    home = root / name
    (home / "bin").mkdir(parents=True)
    for tool in ("java", "javac"):
        (home / "bin" / tool).write_text("#!/bin/sh\n")
    (home / "release").write_text(f'IMPLEMENTOR="test"\nJAVA_VERSION="{version}"\n')
    return home


@pytest.fixture
def no_ambient_java(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only the JDKs a test lays out count: no JAVA_HOME, no `java` on PATH."""
    monkeypatch.delenv("JAVA_HOME", raising=False)
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def test_version_is_read_from_the_release_file(tmp_path: Path) -> None:
    assert java_major(_jdk(tmp_path, "a", "25.0.3")) == 25
    assert java_major(_jdk(tmp_path, "b", "17.0.15")) == 17
    assert java_major(_jdk(tmp_path, "c", "1.8.0_392")) == 8
    assert java_major(tmp_path / "missing") is None


def test_the_newest_jdk_that_is_new_enough_wins(tmp_path: Path, no_ambient_java: None) -> None:
    _jdk(tmp_path, "java-17-openjdk-amd64", "17.0.15")
    _jdk(tmp_path, "java-21-openjdk-amd64", "21.0.4")
    newest = _jdk(tmp_path, "temurin-25-jdk-amd64", "25.0.3")
    assert find_jdk(21, jvm_dir=tmp_path) == newest
    assert java_major(find_jdk(17, jvm_dir=tmp_path)) == 25


def test_java_home_is_a_candidate(tmp_path: Path, no_ambient_java: None, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _jdk(tmp_path / "elsewhere", "jdk-22", "22.0.1")
    monkeypatch.setenv("JAVA_HOME", str(home))
    assert find_jdk(21, jvm_dir=tmp_path / "none") == home


def test_only_old_jdks_fail_naming_what_was_found(tmp_path: Path, no_ambient_java: None) -> None:
    old = _jdk(tmp_path, "java-17-openjdk-amd64", "17.0.15")
    with pytest.raises(StackError) as info:
        find_jdk(21, jvm_dir=tmp_path, why="Elasticsearch 9.5.3")
    message = str(info.value)
    assert "JDK 21+ is needed for Elasticsearch 9.5.3" in message
    assert f"{old} (Java 17)" in message and "MDDE_STACK_JAVA_HOME" in message


def test_a_configured_jdk_must_be_new_enough(tmp_path: Path, no_ambient_java: None) -> None:
    _jdk(tmp_path, "temurin-25-jdk-amd64", "25.0.3")
    old = _jdk(tmp_path / "other", "jdk-17", "17.0.15")
    with pytest.raises(StackError, match="MDDE_STACK_JAVA_HOME=.*not a JDK 21"):
        find_jdk(21, configured=old, jvm_dir=tmp_path)
    good = _jdk(tmp_path / "other", "jdk-24", "24.0.2")
    assert find_jdk(21, configured=good, jvm_dir=tmp_path) == good
