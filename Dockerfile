# One image, two processes: `certwrangler webroot` and `certwrangler manager`.
# BASE_IMAGE: a Debian-based image with Node >= 20, npm and a user `node`, as the official node images are
# (`docker build --build-arg BASE_IMAGE=registry.example.com/node:22-bookworm-slim .` for a mirror).
ARG BASE_IMAGE=node:22-bookworm-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
# --ignore-scripts: `prepare` would run tsc here and the build below would run it again; no dependency of the
# image needs an install script. npm_cafile, an optional build secret, is a CA bundle for npm behind a
# TLS-intercepting proxy (`--secret id=npm_cafile,src=/etc/ssl/certs/ca-certificates.crt`): a secret is
# mounted for this one step, so it is in no layer of either stage.
RUN --mount=type=secret,id=npm_cafile \
    if [ -f /run/secrets/npm_cafile ]; then export NPM_CONFIG_CAFILE=/run/secrets/npm_cafile; fi; \
    npm ci --no-audit --no-fund --ignore-scripts
COPY src ./src
COPY scripts/bundle.mjs ./scripts/
# npm run build: tsc (the type check), then esbuild bundles the CLI (scripts/bundle.mjs), so a start reads a
# few files rather than about 900 modules. rmdir: prune leaves the folders of emptied scopes (@types …) behind.
RUN npm run build && npm prune --omit=dev --no-audit --no-fund && (rmdir node_modules/@*/ 2>/dev/null || true)

FROM ${BASE_IMAGE}
# tini as PID 1 passes SIGTERM on to node and reaps orphans, such as the grandchildren of a hook killed at
# HOOK_TIMEOUT. The official node images do not carry it; a base that does skips the install.
RUN if ! command -v tini >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*; \
    fi
# A young generation of 2 × 4 MB (src/heap.ts YOUNG_GENERATION): a pass's peak memory at the same CPU. An
# operator's own NODE_OPTIONS replaces it.
ENV NODE_ENV=production DATA_DIR=/data WEBROOT_DIR=/var/www/acme PORT=8080 NODE_OPTIONS=--max-semi-space-size=4
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
# The bundle only (dist/cli.js loads dist/certwrangler.js and its chunks), not tsc's per-module output.
# node_modules stays: pino-pretty (LOG_FORMAT=pretty) is loaded from it by name.
COPY --from=build /app/dist/cli.js /app/dist/certwrangler.js /app/dist/healthcheck.js ./dist/
COPY --from=build /app/dist/chunks ./dist/chunks
RUN ln -s /app/dist/cli.js /usr/local/bin/certwrangler && chmod +x /app/dist/cli.js \
 && mkdir -p /data /var/www/acme && chown node:node /data /var/www/acme
USER node
VOLUME ["/data", "/var/www/acme"]
# 8080: the webroot (PORT). 9180: the manager's status page, API and metrics; they answer from outside the
# container only with STATUS_ADDR=:9180 (the compose files set it), since the default is loopback.
EXPOSE 8080 9180
# Asks the webroot or the manager, whichever this container runs, for /healthz on its own port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["node", "/app/dist/healthcheck.js"]
ENTRYPOINT ["tini", "--", "certwrangler"]
CMD ["manager"]
