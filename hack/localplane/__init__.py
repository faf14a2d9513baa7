"""A real local Kubernetes control plane for the tests and the demo (not part of the operator).

etcd, kube-apiserver and kube-controller-manager built from their Go modules
(``hack/build-control-plane.sh``), run on loopback, plus a node agent that runs pods as local
processes. ``python -m hack.localplane up|down|status`` drives it; ``make cluster-up`` calls that.
"""
