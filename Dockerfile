# The jwt-todo server image, for machines that can pull from a registry:
#   docker build -t jwt-todo .
#   docker run -p 8080:8080 -e REDIS_URL=redis://redis:6379 jwt-todo
# Without a registry, `scripts/server-image` builds the equivalent `jwt-todo:local` from a
# binary built on the host (what CI does).

# --- build: the release binary -----------------------------------------------------------
# Any current stable toolchain (the workspace needs at least its rust-version, 1.88).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p server \
    && cp target/release/server /server

# --- runtime: glibc, CA certificates, nothing else; runs as an unprivileged user -----------
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /server /usr/local/bin/server
ENV BIND_ADDR=0.0.0.0:8080 \
    LOG_FORMAT=json \
    APP_ENV=production
EXPOSE 8080
USER nonroot
# No curl in distroless: the binary itself asks GET /readyz on BIND_ADDR.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/server", "healthcheck"]
# SIGTERM (docker stop) drains in-flight requests for up to SHUTDOWN_GRACE (10s by
# default); give `docker stop -t` / terminationGracePeriodSeconds a little more.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/server"]
