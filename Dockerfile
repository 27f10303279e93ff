# syntax=docker/dockerfile:1
# The reward-server image: the server binary, the built-in plugins and their rewards config, on a
# distroless base (glibc, CA certificates, no shell, no package manager), running as uid 65532.
#
#   docker build -t reward-server .
#   docker run --rm -p 8080:8080 -p 50051:50051 --read-only --tmpfs /var/cache/reward-server \
#     -v "$PWD/token:/run/secrets/reward-token:ro" -e REWARD_SERVER_AUTH_TOKEN_FILE=/run/secrets/reward-token reward-server
#
# It listens on 0.0.0.0, so the server refuses to start without a bearer token (a token file, as
# above); REWARD_SERVER_ALLOW_UNAUTHENTICATED=true serves it open, for a trusted network only.
#
# The Helm chart (helm/reward-server) runs it read-only with emptyDirs for the compiled-plugin cache
# and /tmp, and mounts its own rewards config.

ARG RUST_VERSION=1.95
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

# ---- build: the host binary and the wasm guest plugins ----------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# The rustup toolchain of this image has wasm-component-ld and rust-lld; add its wasm32 standard
# library so scripts/build-plugins.sh takes its rustup path (scripts/setup.sh then installs nothing).
RUN rustup target add wasm32-unknown-unknown
ENV CARGO_TERM_COLOR=never
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    cargo build --release --locked -p reward-server \
 && scripts/setup.sh
# The runtime layout: /opt/reward-server/{rewards.toml,plugins/*.wasm}. The image's rewards config is
# the repository's, with its plugin_dir pointed at the image's plugin directory. The test and
# measuring guests (limits-guest, format-loop) stay out.
RUN mkdir -p /out/opt/reward-server/plugins /out/var/cache/reward-server \
 && find target/plugins -maxdepth 1 -name '*.wasm' ! -name 'limits-guest.wasm' ! -name 'format-loop.wasm' \
      -exec cp {} /out/opt/reward-server/plugins/ \; \
 && sed 's|^plugin_dir = .*|plugin_dir = "/opt/reward-server/plugins"|' rewards.toml \
      > /out/opt/reward-server/rewards.toml \
 && grep -q '^plugin_dir = "/opt/reward-server/plugins"$' /out/opt/reward-server/rewards.toml \
 && install -m 0755 target/release/reward-server /out/reward-server

# ---- runtime ----------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="reward-server" \
      org.opencontainers.image.description="Reward functions for RL fine-tuning, scored by sandboxed WebAssembly plugins" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/reward-server /usr/local/bin/reward-server
COPY --from=build /out/opt/reward-server /opt/reward-server
# The compiled-plugin cache must be writable by the non-root user (an emptyDir in Kubernetes).
COPY --from=build --chown=65532:65532 /out/var/cache/reward-server /var/cache/reward-server
USER 65532:65532
ENV REWARD_SERVER_CONFIG=/opt/reward-server/rewards.toml \
    REWARD_SERVER_CACHE_DIR=/var/cache/reward-server \
    REWARD_SERVER_GRPC_ADDR=0.0.0.0:50051 \
    REWARD_SERVER_HTTP_ADDR=0.0.0.0:8080
EXPOSE 50051 8080
ENTRYPOINT ["/usr/local/bin/reward-server"]
CMD ["serve"]
