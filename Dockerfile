# Image for the Tokenmeter api, ingestor and invoicer (and the one-shot migrate job), used by
# docker-compose.yml. It runs compiled JavaScript with production dependencies only: no ts-node,
# no TypeScript, no Prisma CLI at run time.
#
# Not built on our machines (no Docker engine there). What was checked instead: the build stage's
# two commands (prisma-generate.js, tsc -p tsconfig.build.json) and the runtime command
# (node -r tsconfig-paths/register dist/apps/api/src/main.js with TS_NODE_BASEURL=./dist) were
# run on a checkout, and every package the compiled code requires is in package.json's
# "dependencies".

# --- build: all dependencies, generate the Prisma client, compile to dist/ ---------------------
FROM node:20-bookworm AS build
WORKDIR /app
ENV CHECKPOINT_DISABLE=1 \
    PRISMA_HIDE_UPDATE_MESSAGE=1

# PRISMA_SCHEMA_ENGINE_BINARY keeps @prisma/engines' postinstall from downloading a schema engine
# nothing here uses (see scripts/prisma-generate.js).
COPY package.json package-lock.json ./
RUN PRISMA_SCHEMA_ENGINE_BINARY=/usr/local/bin/node npm ci --include=dev --no-audit --no-fund

# Only what the build needs (explicit, so a host node_modules/, dist/ or .local/ is never copied in).
COPY tsconfig.json tsconfig.build.json prisma.config.ts ./
COPY prisma ./prisma
COPY scripts ./scripts
COPY libs ./libs
COPY apps ./apps
# NODE_ENV is not production here: prisma.config.ts reads the validated config, which in
# production insists on secrets that a build has no business knowing.
# npm run build: tsc, plus the dashboard's stylesheet (not TypeScript) next to the compiled pages.
RUN node scripts/prisma-generate.js && npm run build

# --- runtime: production dependencies and the compiled code ------------------------------------
FROM node:20-bookworm-slim AS runtime
WORKDIR /app
# The compiled code keeps the @tokenmeter/* imports; tsconfig-paths (a runtime dependency) maps
# them onto dist/ through tsconfig.json's "paths" with this base URL.
ENV NODE_ENV=production \
    TS_NODE_BASEURL=./dist

# No install scripts: the only ones in the tree belong to the Prisma CLI's engines (a dev
# dependency) and would try the network.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

COPY tsconfig.json ./
# The migrate job (dist/scripts/migrate.js) applies these; it finds them next to dist/.
COPY prisma/migrations ./prisma/migrations
COPY --from=build /app/dist ./dist

USER node
EXPOSE 3000
# ingestor: dist/apps/ingestor/src/main.js; invoicer: dist/apps/invoicer/src/main.js schedule;
# migrate: dist/scripts/migrate.js then dist/prisma/seed.js (docker-compose.yml).
CMD ["node", "-r", "tsconfig-paths/register", "dist/apps/api/src/main.js"]
