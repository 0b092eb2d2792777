# Auth service image: three stages, production dependencies only in the final one.
#
#   docker build -t auth-service .
#   docker compose up --build        # with PostgreSQL and Redis, see docker-compose.yml
#
# The final image runs `node dist/src/server.js` as the non-root `node` user (uid 1000) under
# tini, so SIGTERM reaches node and the server shuts down gracefully. Configuration comes from
# the environment (JWT_SECRET_KEY and ENCRYPTION_MASTER_KEY are required: NODE_ENV=production).

# ---- build: all dependencies, compile TypeScript to dist/
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: bcrypt ships prebuilt binaries (see allowScripts in package.json)
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
# The second command keeps the parsed spec in dist/ (src/http/spec.ts): at run time dist/ is
# not writable, and parsing the YAML at every start costs about half a second.
RUN npm run build \
  && node -e "require('./dist/src/http/spec').loadSpec()"

# ---- deps: production dependencies only (no typescript, jest, ts-jest, supertest)
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Then drop what node never loads at run time: type declarations (@types/node and friends
# arrive transitively through express-openapi-validator and sequelize) and source maps.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && rm -rf /root/.npm \
  && find node_modules -type d -name @types -prune -exec rm -rf {} + \
  && find node_modules -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete

# ---- runtime
FROM node:20-bookworm-slim AS runtime
# tini as PID 1: forwards signals to node and reaps zombies
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini=0.19.* \
  && apt-get clean \
  && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8004 \
    HEALTH_PORT=8005 \
    DATA_DIR=/app/.data
WORKDIR /app
# Application files stay owned by root (read-only for the service); only DATA_DIR is writable.
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY openapi ./openapi
COPY migrations ./migrations
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node
EXPOSE 8004 8005
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.HEALTH_PORT || 8005) + '/health/live', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# -s: also works when not PID 1 (registers as child subreaper)
ENTRYPOINT ["/usr/bin/tini", "-s", "--"]
CMD ["node", "dist/src/server.js"]
