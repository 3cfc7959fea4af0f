# The one Milkyway image: `milkyway operator run`, `milkyway server` and the sidecar
# `milkyway agent` (deploy/ and the rendered pods name it milkyway/milkyway:<version>).
# Build: docker build -t milkyway/milkyway:0.1.0 .
# It runs as the numeric non-root user 65532 with a read-only root file system (nothing
# is written outside the volumes the manifests mount: /tmp and the server's audit
# directory), and needs no shell: the entry point is the exec form of the venv's script.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY src ./src
# Runtime dependencies only, at the versions of requirements.lock (a constraints file:
# the test-only pins in it are not installed).
RUN python -m venv /opt/milkyway \
    && /opt/milkyway/bin/pip install --constraint requirements.lock . \
    && /opt/milkyway/bin/python -m compileall -q /opt/milkyway/lib

FROM python:3.11-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="milkyway" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/milkyway/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
COPY --from=build /opt/milkyway /opt/milkyway
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 8443 8471
ENTRYPOINT ["/opt/milkyway/bin/milkyway"]
CMD ["--help"]
