"""Pure domain core: no Kubernetes, kopf, Prometheus or OpenTelemetry SDK I/O."""
