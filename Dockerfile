# keel's programs on Debian 12, built with the same packages as
# scripts/setup.sh.
FROM debian:12-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc make cmake pkg-config \
      librdkafka-dev libavro-dev libjansson-dev libmicrohttpd-dev libcunit1-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEEL_BUILD_TESTS=OFF \
      -DCMAKE_INSTALL_PREFIX=/opt/keel \
 && cmake --build /build -j"$(nproc)" \
 && cmake --install /build

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends librdkafka1 libjansson4 \
      libmicrohttpd12 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/keel /opt/keel
ENV PATH=/opt/keel/bin:$PATH LD_LIBRARY_PATH=/opt/keel/lib
USER nobody
CMD ["keel", "--help"]
