"""The Kubernetes API client of the service: in-cluster, else the kubeconfig."""

from __future__ import annotations

import os
from typing import Any

from tempaudio_service.core.config import ConfigError


def api_client() -> Any:
    """``ConfigError`` when neither the pod's service account nor a kubeconfig is there."""
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException as in_cluster:
        try:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration
            )
        except (config.ConfigException, OSError) as kubeconfig:
            raise ConfigError(
                "the Kubernetes API is needed (TEMPAUDIO_AUTH=serviceaccount or"
                " TEMPAUDIO_POLICY_SOURCE=kubernetes), but there is no in-cluster service"
                f" account ({in_cluster}) and no usable kubeconfig ({kubeconfig})"
            ) from None
    return client.ApiClient(configuration)
