"""API clients: a kubeconfig when one is given or found, else the in-cluster service account."""

from __future__ import annotations

import os

from kubernetes import client, config

from weavergen.config import operator_config

# Connections kept per API server: one per handler thread (WEAVERGEN_WORKERS) and a few for the
# receiver's gate and the startup; a smaller pool would discard and reopen connections.
POOL_MARGIN = 4


def api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """Kubeconfig (argument, $KUBECONFIG, ~/.kube/config) or in-cluster config, in that order."""
    settings = operator_config()
    configuration = client.Configuration()
    path = kubeconfig or settings.kubeconfig
    if path or os.path.exists(os.path.expanduser("~/.kube/config")):
        config.load_kube_config(config_file=path, client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = settings.workers + POOL_MARGIN
    return client.ApiClient(configuration)
