# syntax=docker/dockerfile:1
# LLM Server image: build with the dev dependencies, run with the production ones only.
#
#   docker build -t llm-server .
#   docker run -p 8000:8000 -e ADMIN_TOKEN="$(openssl rand -hex 32)" -v llm-data:/app/data llm-server
#
# The runtime stage is replayed without Docker by .ci/prod-smoke (same `npm ci` line, same
# files, same command) and checked against this file by test/deploy.spec.ts. No secret is
# baked in: ADMIN_TOKEN, DATABASE_URL, REDIS_URL and upstream API keys come from the
# environment at run time (production refuses to start without a strong ADMIN_TOKEN).
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: TypeScript -> dist/ with the dev dependencies ---------------------------------------
FROM ${NODE_IMAGE} AS build
# Optional: the npm registry for `npm ci` (e.g. a mirror, when the build cannot use the default);
# unset, npm uses its default. Build arguments are not kept in the final image.
ARG npm_config_registry
WORKDIR /build
COPY package.json package-lock.json ./
# Install scripts are not needed: node-llama-cpp's postinstall would only look for (or build)
# binaries, and the prebuilt CPU one arrives as an optional dependency package.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/clean-dist.js scripts/build-pglite-template.js ./scripts/
COPY src ./src
# The build makes dist/pglite-template (the embedded database every new DATA_DIR starts from) by
# running the migrations once.
COPY migrations ./migrations
# The admin console (served at /admin/ui): `npm run build` bundles it into dist/admin-ui, which the
# runtime stage gets with the rest of dist/; its packages are dev dependencies.
COPY console ./console
# --ignore-scripts: the postbuild hook (a stamp for `npm start`) has no use in an image.
RUN npm run build --ignore-scripts

# ---- deps: production node_modules only --------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
ARG npm_config_registry
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund
# The embedded engine's CPU binary for this architecture only: package.json `overrides` already
# turn the CUDA/Vulkan builds into empty packages; drop the other architectures' prebuilt
# binaries too (npm installs linux-arm64/armv7l on x64 because their package.json lists x64).
RUN case "$(node -p process.arch)" in \
      x64) keep=linux-x64 ;; arm64) keep=linux-arm64 ;; arm) keep=linux-armv7l ;; *) keep=none ;; \
    esac \
 && for dir in node_modules/@node-llama-cpp/*; do \
      [ "$(basename "$dir")" = "$keep" ] || rm -rf "$dir"; \
    done \
 && ls node_modules/@node-llama-cpp

# ---- runtime ----------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/app/data \
    MODELS_FILE=config/models.yaml
WORKDIR /app
# Everything but DATA_DIR is owned by root and read-only for the server's user, so the root
# filesystem can be mounted read-only (Kubernetes readOnlyRootFilesystem).
COPY package.json package-lock.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /build/dist ./dist
COPY migrations ./migrations
COPY config ./config
# DATA_DIR: PGlite's files (when DATABASE_URL is unset) and the generated tiny model
# (config/models.yaml: data/models/tiny.gguf, relative to /app). Mount a volume here.
RUN mkdir -p /app/data && chown 1000:1000 /app/data
VOLUME ["/app/data"]
# The `node` user of the official image, by number so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8000
# Liveness only: /healthz touches no dependency. The slim image has no curl, so Node asks.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "require('http').get({host:'127.0.0.1',port:process.env.PORT||8000,path:'/healthz',timeout:4000},(r)=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))"]
STOPSIGNAL SIGTERM
# Exec form: Node is PID 1 and receives SIGTERM itself (then drains for SHUTDOWN_GRACE_MS).
# Not `npm start`: npm would be PID 1, and its prestart hook needs the build tools.
CMD ["node", "dist/main.js"]
