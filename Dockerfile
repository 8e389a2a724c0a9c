# dicom-server: the container image (README: "Running in a container").
#
#   docker build -t dicom-server .
#   docker run -d --init -p 11112:11112 -p 8000:8000 -v dicomdata:/app/datastore dicom-server
#
# Three stages: `build` compiles the server and the console and packs the package (`npm pack`:
# exactly the files package.json ships); `deps` installs only the production dependencies from
# the lockfile; the runtime image holds those two and Node, no compiler, no npm cache, and runs
# as the unprivileged user `node`. test/deploy/clean-install.test.ts repeats the runtime's steps
# (the packed files, `npm ci --omit=dev`, the CMD and the HEALTHCHECK command) on the host.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- toolchain: what better-sqlite3 needs to compile from source (node-gyp) ---------------------
FROM ${NODE_IMAGE} AS toolchain
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app

# ---- build: every dependency, compile (tsc, vite), pack -----------------------------------------
FROM toolchain AS build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json README.md ./
COPY src ./src
COPY web ./web
RUN npm run build \
 && npm pack --pack-destination /tmp \
 && mkdir /package \
 && tar -xzf /tmp/dicom-server-*.tgz -C /package --strip-components=1

# ---- deps: the production dependencies only, from the lockfile ---------------------------------
FROM toolchain AS deps
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# ---- runtime -----------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# Only the data directory is set here: a DICOM_SERVER_* setting given in the environment wins
# over the one stored with the console (which shows it as overridden), so the others are left
# to the console, `dicom-server config set`, or the compose file.
ENV NODE_ENV=production \
    DICOM_SERVER_DATA_DIR=/app/datastore
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /package/ ./
# The data directory (storage and the SQLite index), owned by `node`: a new named volume mounted
# here starts as a copy of it, ownership included, so no entrypoint script has to create or
# chown it at start. A bind mount keeps the host directory's owner: give it to uid 1000.
RUN mkdir -p /app/datastore && chown node:node /app/datastore
VOLUME ["/app/datastore"]
USER node

# DICOM (setting `port`, DICOM_SERVER_DICOM_PORT), web console and REST API (DICOM_SERVER_HTTP_PORT).
EXPOSE 11112 8000

# GET /dicom-server/api/health/ on DICOM_SERVER_HTTP_PORT: exit 0 healthy, 1 not, with a reason.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["node", "dist/src/cli/main.js", "health"]

# No entrypoint script: every setting comes from DICOM_SERVER_* variables, which `serve` reads
# itself, and the data directory is prepared above. In exec form Node is PID 1 and gets
# `docker stop`'s SIGTERM itself: open associations get DICOM_SERVER_SHUTDOWN_GRACE seconds
# (default 10) to finish, then it exits 0. Docker kills after 10 s unless told otherwise: stop
# with `docker stop -t 30` (compose: stop_grace_period). Run with `--init` (compose: init: true)
# so that the processes processing_command starts are reaped. Node's flag: a smaller young
# generation, for memory (src/cli/node-flags.ts).
CMD ["node", "--max-semi-space-size=4", "dist/src/cli/main.js", "serve"]
