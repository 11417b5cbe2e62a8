# syntax=docker/dockerfile:1
# The Headwater operator image: `docker build -t headwater/operator:$(version) .`
# Two stages: the first installs the package and its dependencies into a virtualenv (wheels
# only: every dependency ships binary wheels), the second copies only that virtualenv onto a
# clean slim Python, so no compiler, pip cache or source tree reaches the final image.
# The virtualenv has no pip of its own (--without-pip): nothing installs at runtime, so the
# base image's pip fills it from outside (`pip --python`, pip >= 22.3).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv --without-pip /opt/headwater
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN python -m pip --python /opt/headwater/bin/python install --only-binary=:all: . \
 && /opt/headwater/bin/headwater --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="headwater" \
      org.opencontainers.image.description="Kubernetes operator for on-premises data pipelines" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/headwater /opt/headwater
ENV PATH=/opt/headwater/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HEADWATER_METRICS_PORT=8080
# A fixed numeric uid/gid so `runAsNonRoot` can verify it (the chart runs it as 65532 too).
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["headwater", "run"]
