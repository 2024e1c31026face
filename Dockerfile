# The one DriftWatch image: `driftwatch operator`, `driftwatch sidecar`, `driftwatch gate`, ... are
# entry points of the same package. Build: `make image` (tags it with pyproject.toml's version; needs a
# Docker engine -- the development machine has none, so CI does not build it).
# What runs in a pod only: no extras, and .dockerignore leaves out the dev-only local cluster
# (driftwatch/devcluster/) and `driftwatch demo` (docs/decisions.md).
FROM python:3.11-slim AS build
# the numeric monitor's fused loop (driftwatch/detect/_kernel.c) is compiled into the wheel here;
# the runtime stage gets the built wheel and no compiler
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
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
