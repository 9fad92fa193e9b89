# One image for the worker and the API (docker-compose.yml picks the command). It builds lib/ with `npm run build`,
# as `make up` does; test/deploy/compose.test.ts checks that what it copies is enough for that build.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/lib ./lib
COPY package.json ./
# The local driver's PUBFLOW_PUBLISHED_DIR: a volume mounted here starts out owned by the user that writes to it.
RUN mkdir -p /data/published /media && chown node:node /data/published
USER node
CMD ["node", "lib/api.js"]
