# syntax=docker/dockerfile:1
# One image for the operator and the sidecar: `cas-gateway operator ...` / `cas-gateway sidecar ...`.
# Node 24 LTS (maintenance until April 2028; Node 20 reached its end of life in April 2026). The
# code also runs on Node >= 20.19 (package.json engines), which the development machine has.

# ---- build: compile TypeScript, then keep only production dependencies ----
FROM node:24-bookworm-slim AS build
WORKDIR /src
ENV npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY crds ./crds
COPY model ./model
COPY importer ./importer
COPY operator ./operator
COPY sidecar ./sidecar
COPY cli ./cli
RUN npm run build \
 && npm prune --omit=dev \
 && find dist -name '*.map' -delete \
 && rm -f dist/.tsbuildinfo

# ---- runtime: node, production node_modules, dist; nothing else ----
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
# glibc malloc: keep buffers of up to 32 MiB on the heap and freed memory up to 128 MiB in the
# process. A SotW CDS response is one ~12 MB buffer (grpc-js frames each message in a fresh one);
# by default glibc mmaps and unmaps such buffers or trims the heap under them, and faulting the pages
# in again stalled a response by up to ~40 ms (docs/xds-server.md). bench/xds-server.bench.ts runs
# the control plane with these lines.
ENV MALLOC_MMAP_THRESHOLD_=33554432
ENV MALLOC_TRIM_THRESHOLD_=134217728
WORKDIR /app
# A fixed non-root uid/gid, matching the chart's runAsUser (the image's `node` user is 1000).
RUN groupadd --system --gid 10001 casgw \
 && useradd --system --uid 10001 --gid casgw --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin casgw
COPY --from=build --chown=root:root /src/package.json ./package.json
COPY --from=build --chown=root:root /src/node_modules ./node_modules
COPY --from=build --chown=root:root /src/dist ./dist
COPY --from=build --chown=root:root /src/bin ./bin
RUN chmod 0755 /app/bin/cas-gateway.js && ln -s /app/bin/cas-gateway.js /usr/local/bin/cas-gateway
USER 10001:10001
# xDS (operator), admin (operator), ext_authz gRPC (sidecar), admin (sidecar)
EXPOSE 18000 9090 9001 9102
ENTRYPOINT ["cas-gateway"]
CMD ["--help"]
