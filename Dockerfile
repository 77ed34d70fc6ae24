# syntax=docker/dockerfile:1
#
# One image for every Quorum process: the six services (quorum-ingest, quorum-expert-fanout,
# quorum-consensus, quorum-tool-exec, quorum-audit, quorum-dlq-replayer) and the operator's tool
# `quorum` (migrations, keys). The container's command names the binary:
#
#   docker build -t quorum:local .
#   docker run --rm quorum:local quorum --help
#
# docker-compose.yml and deploy/k8s/ run it that way. See docs/adr/0024-deployment.md for the choices.
#
# Base images are pinned by tag and digest (the digest wins; the tag says what it is). To move on,
# change both together.
ARG RUST_IMAGE=rust:1.95-slim-trixie@sha256:985053ebf77f576c742435c12c1923ee04dbe511e17f087dd1a8f022307d3aeb
ARG RUNTIME_IMAGE=debian:trixie-slim@sha256:3a39a0592364683e6bab97937b72cad5a8fa6dcbbee90edb3bb48c7f8e94f258

# cargo-chef, pinned: `prepare` reduces the workspace to its manifests and lock file (the recipe),
# `cook` builds only the dependencies from it. The cooked layer is reused as long as no manifest
# and no Cargo.lock changes, so a change to Quorum's own code rebuilds Quorum's crates only.
FROM ${RUST_IMAGE} AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --recipe-path recipe.json
COPY . .
# The same selection as the cook (the whole workspace, default targets), so that features unify
# the same way and nothing cooked is built again.
RUN cargo build --release --locked \
 && mkdir /out \
 && for bin in quorum quorum-ingest quorum-expert-fanout quorum-consensus quorum-tool-exec \
        quorum-audit quorum-dlq-replayer; do cp "target/release/$bin" /out/; done

# Debian slim rather than distroless: compose healthchecks run a command inside the container
# (curl), and the exec tool's allowlisted programs (/bin/echo, /usr/bin/true, ...) must exist.
FROM ${RUNTIME_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="quorum" \
      org.opencontainers.image.description="Quorum: an event-sourced pipeline for AI expert orchestration (services and operator's tool)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/debian:trixie-slim"
# ca-certificates: TLS to NATS (tls://), to https experts and tools, uses the system roots. curl: compose healthchecks.
# tini: PID 1 that forwards signals and reaps what tool-exec's sandboxed children leave behind.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 quorum \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin quorum
COPY --from=builder /out/ /usr/local/bin/
# Numeric, so that Kubernetes can check runAsNonRoot without resolving a name.
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["quorum", "--help"]
