# syntax=docker/dockerfile:1

# ---- build: install everything, compile TypeScript, build the console, then drop dev dependencies ----
FROM node:22-bookworm-slim AS build
# sqlite3 tries a prebuilt binary first and falls back to node-gyp, which needs these.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts ./scripts
# prepare (the console build) skips here: console/ is copied below, so a source change keeps npm ci's layer.
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY console ./console
# tsc -p tsconfig.build.json emits dist/src/server.js (and dist/src/cli.js); Vite the console in dist/console
RUN npm run build \
 && npm run build:console \
 && npm prune --omit=dev

# ---- runtime ----
FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
# Application files stay owned by root (read-only for the service); only /data is writable.
COPY package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
COPY policies ./policies
# usher.db and the generated server secret live here; keep it on a volume.
RUN mkdir -p /data && chown node:node /data && chmod 700 /data
# Environment variables override the config file (USHER_CONFIG): set server.port/dataDir with -e, not in the file.
ENV USHER_DATA_DIR=/data USHER_PORT=8787
VOLUME /data
EXPOSE 8787
USER node
# No curl in slim images: use Node's global fetch. Follows USHER_PORT if it is overridden at run time.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.USHER_PORT||8787)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Break-glass CLI in the same image: docker exec -it <container> node dist/src/cli.js reset-password <username>
CMD ["node", "dist/src/server.js"]
