"""Elasticsearch credentials and TLS from the settings; which errors are worth retrying."""

from __future__ import annotations

from pathlib import Path

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elasticsearch import ApiError, ConnectionError, ConnectionTimeout, SerializationError

from mdde_stream.config import Settings
from mdde_stream.telemetry.es_client import client_options, connect, transient


def test_local_defaults_need_no_credentials() -> None:
    assert client_options(Settings()) == {}


def test_api_key_and_ca_file_reach_the_client_but_never_a_repr(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = Settings(elasticsearch_api_key="c2VjcmV0LWtleQ==", elasticsearch_ca_file=ca)
    assert client_options(settings) == {"api_key": "c2VjcmV0LWtleQ==", "ca_certs": str(ca)}
    assert "c2VjcmV0LWtleQ==" not in repr(settings) and "c2VjcmV0LWtleQ==" not in str(settings.model_dump())


def test_user_and_password_become_basic_auth() -> None:
    settings = Settings(elasticsearch_username="mdde", elasticsearch_password="hunter2")
    assert client_options(settings) == {"basic_auth": ("mdde", "hunter2")}
    assert "hunter2" not in repr(settings)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"elasticsearch_api_key": "s3cr3t", "elasticsearch_username": "u"}, "MDDE_ELASTICSEARCH_API_KEY"),
        ({"elasticsearch_username": "u"}, "MDDE_ELASTICSEARCH_PASSWORD"),
        ({"elasticsearch_password": "s3cr3t"}, "MDDE_ELASTICSEARCH_USERNAME"),
        ({"elasticsearch_ca_file": "/nonexistent/ca.crt"}, "MDDE_ELASTICSEARCH_CA_FILE"),
    ],
)
def test_a_combination_that_cannot_work_names_the_setting(fields: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named) as info:
        client_options(Settings(**fields))  # type: ignore[arg-type]
    assert "s3cr3t" not in str(info.value)


def test_connect_needs_a_url() -> None:
    with pytest.raises(ValueError, match="MDDE_ELASTICSEARCH"):
        connect("", settings=Settings())


def _api_error(status: int) -> ApiError:
    meta = ApiResponseMeta(status=status, http_version="1.1", headers=HttpHeaders(), duration=0.0,
                           node=NodeConfig("http", "127.0.0.1", 9200))
    return ApiError(message="test", meta=meta, body={})


def test_no_answer_and_overload_are_transient_other_http_errors_are_not() -> None:
    assert transient(ConnectionError("refused"))
    assert transient(ConnectionTimeout("timed out"))
    assert all(transient(_api_error(status)) for status in (408, 429, 500, 502, 503, 504))
    assert not any(transient(_api_error(status)) for status in (400, 401, 403, 404, 409))
    assert not transient(SerializationError("bad json"))
