# syntax=docker/dockerfile:1
# One image for the operator and its phase Jobs: `weavergen operator run` and
# `weavergen phase run ...`. Non-root, no shell needed at run time, read-only root filesystem
# friendly (no bytecode writes; the chart mounts an emptyDir at /tmp).
ARG PYTHON_VERSION=3.11
# The base of both stages. Without a registry (the local plane) a Debian minbase + python3 built
# by hack/build-images.sh is passed here; it must provide `python` with the venv module.
ARG BASE_IMAGE=python:${PYTHON_VERSION}-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/weavergen
# The dependencies and the build backend, read from pyproject.toml, in a layer of their own: a
# change to operator/ reuses it and installs only the project, without the network.
COPY pyproject.toml ./
RUN /opt/weavergen/bin/python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb")); \
print(*p["build-system"]["requires"], *p["project"]["dependencies"], sep="\n")' >/tmp/requirements.txt \
    && /opt/weavergen/bin/pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
COPY README.md ./
COPY operator ./operator
RUN /opt/weavergen/bin/pip install --no-deps --no-build-isolation . \
    && /opt/weavergen/bin/pip check \
    && /opt/weavergen/bin/python -m compileall -q /opt/weavergen/lib

FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="weavergen-operator" \
      org.opencontainers.image.description="DMEDI regeneration cycles for Kubernetes workloads" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/weavergen/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WEAVERGEN_BPMN_DIR=/opt/weavergen/bpmn
COPY --from=build /opt/weavergen /opt/weavergen
COPY bpmn /opt/weavergen/bpmn
# A fixed numeric user, so `runAsNonRoot` can be verified without a passwd lookup; its passwd
# entry is for libraries that ask for the user's name (kopf's peering identity calls
# getpass.getuser(), which raises KeyError for a uid without one).
RUN groupadd --gid 65532 weavergen \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin weavergen
USER 65532:65532
EXPOSE 4318 8080
ENTRYPOINT ["weavergen"]
CMD ["operator", "run", "--receiver-host", "0.0.0.0", "--liveness", "http://0.0.0.0:8080/healthz"]
