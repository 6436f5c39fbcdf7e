# The Silt broker image: built with the Rust toolchain, run from a small
# Debian image as an unprivileged user, configured through SILT_* variables
# (or a file mounted at /etc/silt/silt.toml and `serve --config`).
#
#   docker build -t silt .
#   docker run -p 9092:9092 -p 9644:9644 -v silt-data:/var/lib/silt \
#     -e SILT_BROKER__ADVERTISED_LISTENER=localhost:9092 silt
#
# Clients must be told an address they can reach: set
# SILT_BROKER__ADVERTISED_LISTENER (the listen address 0.0.0.0 is not one).

FROM rust:1.95-bookworm AS build
# protoc: the etcd client's build generates its gRPC code. Debian's
# packages are not pinned: the base image pins the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends protobuf-compiler \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin silt \
    && strip target/release/silt

FROM debian:bookworm-slim
# ca-certificates: TLS to S3 and etcd; curl: the health check.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/silt silt \
    && mkdir -p /var/lib/silt /etc/silt \
    && chown silt:silt /var/lib/silt
COPY --from=build /src/target/release/silt /usr/local/bin/silt
USER 10001:10001
ENV SILT_BROKER__DATA_DIR=/var/lib/silt \
    SILT_BROKER__LISTEN=0.0.0.0:9092 \
    SILT_BROKER__ADMIN_LISTEN=0.0.0.0:9644
VOLUME ["/var/lib/silt"]
# Kafka clients; the admin port (/metrics, /health).
EXPOSE 9092 9644
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9644/health"]
ENTRYPOINT ["silt"]
CMD ["serve"]
