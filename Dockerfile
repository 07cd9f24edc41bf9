# syntax=docker/dockerfile:1
# ferrostream: build the release binary, then ship it on a slim Debian with the default config.
#   docker build -t ferrostream .
#   docker run -p 1935:1935 -p 8554:8554 -p 8080:8080 -p 3478:3478/udp -p 3478:3478/tcp ferrostream
# Override any key with -e FERROSTREAM__<SECTION>__<KEY>=value.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# libopus for the AAC→Opus transcoder (linked dynamically, found with pkg-config).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libopus-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
# The caches keep the registry and incremental artefacts between builds; the binary is copied
# out because a cache mount is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p server \
    && cp target/release/ferrostream /usr/local/bin/ferrostream

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libopus0 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/ferrostream --create-home ferrostream
COPY --from=build /usr/local/bin/ferrostream /usr/local/bin/ferrostream
COPY conf/config.ini /etc/ferrostream/config.ini
USER ferrostream
# Relative paths in the config (./www for HLS, recordings, static files) resolve here.
WORKDIR /var/lib/ferrostream
EXPOSE 1935 8554 8080 3478/udp 3478/tcp
ENTRYPOINT ["ferrostream", "-c", "/etc/ferrostream/config.ini"]
