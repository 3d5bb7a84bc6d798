# sidecache image: built with the same scripts/bootstrap and CMake steps that CI runs.
#   docker build -t sidecache .
#   docker run --rm -p 8080:8080 -e SIDECACHE_LISTEN=0.0.0.0:8080 -e LEGACY_URL=http://legacy:3000 \
#       -e DATABASE_URL=postgresql://... -e JWT_SECRET=... -e ELEVENLABS_API_KEY=... sidecache
# The admin listener stays on the container's 127.0.0.1:9901 unless
# SIDECACHE_ADMIN_TOKEN is set (deploy/docker/entrypoint); add -p 9901:9901
# with a token to reach it from outside. docs/operations.md, "Deployment".
FROM debian:bookworm-slim AS build
WORKDIR /src
COPY scripts/bootstrap scripts/bootstrap
RUN scripts/bootstrap --build
COPY . .
RUN cmake -S . -B build -DSIDECACHE_WERROR=ON -DBUILD_TESTING=OFF -DSIDECACHE_BENCH=OFF \
 && cmake --build build -j"$(nproc)" --target sidecache \
 && cmake --install build --prefix /opt/sidecache

FROM debian:bookworm-slim
COPY scripts/bootstrap /usr/local/lib/sidecache/bootstrap
RUN /usr/local/lib/sidecache/bootstrap --runtime && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home --shell /usr/sbin/nologin sidecache
COPY --from=build /opt/sidecache/bin/sidecache /usr/local/bin/sidecache
COPY deploy/docker/entrypoint /usr/local/bin/sidecache-entrypoint
COPY deploy/docker/sidecache-probe /usr/local/bin/sidecache-probe
# SQL migrations and fill queries, and the example configuration; paths in the
# YAML (database.migrations_dir, database.queries_dir) are relative to /etc/sidecache.
COPY db/migrations /etc/sidecache/db/migrations
COPY db/queries /etc/sidecache/db/queries
COPY conf/sidecache.example.yaml /etc/sidecache/sidecache.yaml
WORKDIR /etc/sidecache
USER sidecache
# SIDECACHE_ADMIN_LISTEN is set by the entrypoint: 127.0.0.1:9901, or
# 0.0.0.0:9901 when SIDECACHE_ADMIN_TOKEN is set.
ENV SIDECACHE_LISTEN=0.0.0.0:8080
EXPOSE 8080 9901
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s CMD ["/usr/local/bin/sidecache-probe", "/readyz"]
ENTRYPOINT ["/usr/local/bin/sidecache-entrypoint"]
CMD ["--config", "/etc/sidecache/sidecache.yaml"]
