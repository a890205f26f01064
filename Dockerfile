# icefall-writer and icefall-optimizer in one small runtime image.
#   docker build -t icefall:dev .
#   docker run --rm icefall:dev icefall-writer --help
#
# Stage 1 builds both binaries in release mode (librdkafka is compiled in, with TLS/SASL via
# OpenSSL, Kerberos via Cyrus SASL and OIDC tokens via libcurl).
FROM rust:1.94-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake g++ make zlib1g-dev libssl-dev libsasl2-dev libcurl4-openssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bins -p icefall-writer -p icefall-optimizer \
 && strip target/release/icefall-writer target/release/icefall-optimizer

# Stage 2: only the binaries, CA certificates (S3 and REST catalogs over TLS) and a non-root user.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates zlib1g libssl3 libsasl2-2 libsasl2-modules-gssapi-mit libcurl4 tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/icefall --create-home icefall
COPY --from=build /src/target/release/icefall-writer /src/target/release/icefall-optimizer /usr/local/bin/
USER 10001
WORKDIR /var/lib/icefall
# The writer serves /metrics, /healthz and /readyz here when [metrics] listen is set.
EXPOSE 9464
# tini forwards SIGTERM so the writer makes its final checkpoint before it exits.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["icefall-writer", "run", "--config", "/etc/icefall/writer.toml"]
