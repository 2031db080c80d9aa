# keel's programs on Debian 12 (bookworm), for docker-compose.yml.
#
#   docker build -t keel:dev .
#
# The build stage installs the packages of `scripts/setup.sh build`, the
# same list a developer's machine gets, builds keel with cmake and installs
# it under /usr/local: the keel tool, keel-orchestrator, keel-projector,
# libkeel, and the payment example (keel-payment-worker and its workflow
# module /usr/local/lib/keel/libkeel_payment_workflows.so). The runtime
# stage holds that tree and the shared libraries it loads, plus curl for
# the health checks.
FROM debian:12-slim AS build
COPY scripts/setup.sh /tmp/setup.sh
RUN /tmp/setup.sh build && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DKEEL_BUILD_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr/local \
 && cmake --build /build -j"$(nproc)" \
 && DESTDIR=/staging cmake --install /build

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends librdkafka1 libjansson4 \
      libmicrohttpd12 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /staging/usr/local/ /usr/local/
RUN ldconfig \
 && useradd --system --no-create-home --shell /usr/sbin/nologin keel
USER keel
# Settings come from KEEL_* variables (README.md, "Configuration"), as
# docker-compose.yml sets them.
CMD ["keel", "--help"]
