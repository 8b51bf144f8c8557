"""One namespaced custom resource listed, then watched, for as long as the service runs: the
loop behind the Kubernetes policy source (one thread per namespace and resource).

The server ends each watch after ``WATCH_SECONDS``; the next one starts at once from the
last resource version, and a version too old (410) lists again. Failures back off up to
30 s and never end the loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from tempaudio_api import GROUP, VERSION

logger = logging.getLogger(__name__)
# The server ends each watch after this long; the next one starts at once.
WATCH_SECONDS = 60


class Sink(Protocol):
    """What the loop reports to, for ``(namespace, plural)``."""

    def relisted(self, namespace: str, plural: str, items: list[Mapping[str, Any]]) -> None: ...

    def changed(
        self, namespace: str, plural: str, kind: str, document: Mapping[str, Any]
    ) -> None: ...

    def touched(self, namespace: str, plural: str) -> None: ...


# An optional resource the API server does not have (its CRD not applied: ``helm upgrade``
# does not install new CRDs) or does not let this service read is listed again this often.
ABSENT_RETRY_SECONDS = 30.0


def follow(
    api_client: Any,
    namespace: str,
    plural: str,
    sink: Sink,
    stopping: threading.Event,
    *,
    optional: bool = False,
) -> None:
    """List, then watch, ``plural`` in ``namespace`` until ``stopping`` is set.

    An ``optional`` resource that is not there (404) or not readable (403) reads as none,
    with a warning, and is looked for again every ``ABSENT_RETRY_SECONDS``: its absence
    refuses only what needs it, never the whole service."""
    from kubernetes import client, watch
    from kubernetes.client.exceptions import ApiException

    api = client.CustomObjectsApi(api_client)
    backoff = 1.0
    while not stopping.is_set():
        try:
            listing: Any = api.list_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, _request_timeout=30
            )
            sink.relisted(namespace, plural, listing.get("items") or [])
            version = listing["metadata"]["resourceVersion"]
            backoff = 1.0
            while not stopping.is_set():
                stream = watch.Watch()  # type: ignore[no-untyped-call]
                for event in stream.stream(  # type: ignore[no-untyped-call]
                    api.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    namespace,
                    plural,
                    resource_version=version,
                    timeout_seconds=WATCH_SECONDS,
                    allow_watch_bookmarks=True,
                    _request_timeout=WATCH_SECONDS + 30,
                ):
                    sink.changed(namespace, plural, event["type"], event["object"])
                version = stream.resource_version or version
                sink.touched(namespace, plural)
        except ApiException as error:
            if optional and error.status in (403, 404):
                logger.warning(
                    "%s in %s cannot be listed (%s %s): read as none; is its CRD applied "
                    "and the service's Role current?",
                    plural,
                    namespace,
                    error.status,
                    error.reason,
                )
                sink.relisted(namespace, plural, [])
                stopping.wait(ABSENT_RETRY_SECONDS)
            elif error.status != 410:  # 410: the version is too old; list again
                logger.warning(
                    "%s watch in %s: %s %s", plural, namespace, error.status, error.reason
                )
                stopping.wait(backoff)
                backoff = min(30.0, backoff * 2)
        except Exception as error:  # noqa: BLE001 - a watch must outlive any one failure
            logger.warning("%s watch in %s failed: %s", plural, namespace, error)
            stopping.wait(backoff)
            backoff = min(30.0, backoff * 2)
