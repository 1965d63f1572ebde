"""The one place an Elasticsearch client is made: URL, credentials and TLS come from ``Settings``.

The local stack runs Elasticsearch with security off on 127.0.0.1; a production cluster needs TLS
and an API key (or a user and password), which ``MDDE_ELASTICSEARCH_API_KEY`` /
``MDDE_ELASTICSEARCH_USERNAME`` + ``MDDE_ELASTICSEARCH_PASSWORD`` and
``MDDE_ELASTICSEARCH_CA_FILE`` supply. Secrets stay ``SecretStr`` until the moment the client is
built, so they never reach a log line or an error message.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import ApiError, Elasticsearch, SerializationError, TransportError
from elasticsearch import ConnectionError as EsConnectionError

from mdde_stream.config import Settings, get_settings

RETRYABLE_STATUS = {408, 429, 500, 502, 503, 504}

# What a request can raise: an HTTP error answer (ApiError, with a status) or no answer at all
# (TransportError: connection refused or reset, timeout, TLS failure).
ES_ERRORS: tuple[type[Exception], ...] = (ApiError, TransportError)


def client_options(settings: Settings) -> dict[str, Any]:
    """Authentication and TLS keyword arguments for ``Elasticsearch(...)`` from the settings.

    Raises ValueError naming the setting when the combination cannot work.
    """
    options: dict[str, Any] = {}
    api_key = settings.elasticsearch_api_key
    password = settings.elasticsearch_password
    if api_key is not None and settings.elasticsearch_username:
        raise ValueError("MDDE_ELASTICSEARCH_API_KEY and MDDE_ELASTICSEARCH_USERNAME are exclusive: set one")
    if api_key is not None:
        options["api_key"] = api_key.get_secret_value()
    elif settings.elasticsearch_username:
        if password is None:
            raise ValueError("MDDE_ELASTICSEARCH_USERNAME is set but MDDE_ELASTICSEARCH_PASSWORD is not")
        options["basic_auth"] = (settings.elasticsearch_username, password.get_secret_value())
    elif password is not None:
        raise ValueError("MDDE_ELASTICSEARCH_PASSWORD is set but MDDE_ELASTICSEARCH_USERNAME is not")
    ca_file = settings.elasticsearch_ca_file
    if ca_file is not None:
        if not ca_file.expanduser().is_file():
            raise ValueError(f"MDDE_ELASTICSEARCH_CA_FILE: no such file {ca_file}")
        options["ca_certs"] = str(ca_file.expanduser())
    return options


def connect(url: str, timeout_s: float = 30.0, settings: Settings | None = None, max_retries: int = 0) -> Elasticsearch:
    """A client whose own retries are off by default: the indexer's back-off decides when to try again."""
    if not url:
        raise ValueError("no Elasticsearch URL: set MDDE_ELASTICSEARCH (e.g. http://127.0.0.1:9200)")
    options = client_options(settings or get_settings())
    return Elasticsearch(
        url, request_timeout=timeout_s, max_retries=max_retries, retry_on_timeout=max_retries > 0, **options
    )


def transient(exc: Exception) -> bool:
    """No answer, timeouts, 408/429 and 5xx pass; another HTTP error is a bug that retrying will not fix."""
    if isinstance(exc, EsConnectionError):
        return True
    if isinstance(exc, ApiError):
        return exc.meta.status in RETRYABLE_STATUS
    return isinstance(exc, TransportError) and not isinstance(exc, SerializationError)
