"""API clients: a kubeconfig when one is given or found, else the in-cluster service account."""

from __future__ import annotations

import os

from kubernetes import client, config
from urllib3.util.retry import Retry

from weavergen.config import operator_config

# Connections kept per API server: one per handler thread (WEAVERGEN_WORKERS) and a few for the
# receiver's gate and the startup; a smaller pool would discard and reopen connections.
POOL_MARGIN = 4
# For a process that must not fail while the API server is away a few seconds (a restart, an
# upgrade): a refused connection is tried again 0, 0.5, 1, 2, 4 and 8 s later (15.5 s in all).
# Only connecting is retried that long: a request that may have reached the server is not.
RIDE_OUT_RESTARTS = Retry(total=None, connect=6, read=2, status=0, other=0, backoff_factor=0.25)


def api_client(kubeconfig: str | None = None, *, retries: Retry | None = None) -> client.ApiClient:
    """Kubeconfig (argument, $KUBECONFIG, ~/.kube/config) or in-cluster config, in that order;
    ``retries`` replaces the client's (urllib3's default: three at once)."""
    settings = operator_config()
    configuration = client.Configuration()
    path = kubeconfig or settings.kubeconfig
    if path or os.path.exists(os.path.expanduser("~/.kube/config")):
        config.load_kube_config(config_file=path, client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = settings.workers + POOL_MARGIN
    configuration.retries = retries
    return client.ApiClient(configuration)
