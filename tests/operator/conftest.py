"""Fixtures of the operator tests."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tempaudio_service.storage.store import AudioStore


@pytest.fixture
def aws(moto_endpoint: str, dynamodb: Any, s3: Any) -> dict[str, Any]:
    """A fresh bucket and table on moto for one policy."""
    suffix = uuid.uuid4().hex[:10]
    bucket, table = f"audio-{suffix}", f"audio-{suffix}"
    store = AudioStore(s3, dynamodb, bucket=bucket, table=table)
    store.ensure_resources(enable_ttl=False)  # enabling TTL is the operator's job here
    return {"bucket": bucket, "table": table, "store": store, "endpoint": moto_endpoint}
