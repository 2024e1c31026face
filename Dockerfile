# The one DriftWatch image: `driftwatch operator`, `driftwatch sidecar`, `driftwatch gate`, ... are
# entry points of the same package. Build: `docker build -t ghcr.io/driftwatch/driftwatch:0.1.0 .`
# (needs a Docker engine; the development machine has none, so CI does not build it).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY driftwatch ./driftwatch
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
# uid/gid 65532 as in the chart and the injected sidecar's securityContext (runAsNonRoot, restricted PSS)
RUN groupadd --gid 65532 driftwatch && useradd --uid 65532 --gid 65532 --no-create-home driftwatch
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 65532:65532
ENV PYTHONUNBUFFERED=1
EXPOSE 8476 9476 8080 9443
ENTRYPOINT ["driftwatch"]
CMD ["--help"]
