# Image for the Tokenmeter api and ingestor (and the one-shot migrate job), used by
# docker-compose.yml. Runs the TypeScript sources with ts-node, as `npm run start:*` does.
# Not built on our machines (no Docker engine there): unverified, kept deliberately simple.
FROM node:20-bookworm

WORKDIR /app
ENV NODE_ENV=production \
    CHECKPOINT_DISABLE=1 \
    PRISMA_HIDE_UPDATE_MESSAGE=1

# Dependencies first, so source changes do not reinstall them. Dev dependencies are kept:
# ts-node, typescript and the prisma CLI are needed at run time. PRISMA_SCHEMA_ENGINE_BINARY
# keeps @prisma/engines' postinstall from downloading a schema engine nothing here uses.
COPY package.json package-lock.json ./
RUN PRISMA_SCHEMA_ENGINE_BINARY=/usr/local/bin/node npm ci --include=dev --no-audit --no-fund

# Only what the apps need (explicit, so a host node_modules/ or .local/ is never copied in).
COPY tsconfig.json nest-cli.json prisma.config.ts ./
COPY prisma ./prisma
COPY scripts ./scripts
COPY libs ./libs
COPY apps ./apps

# Same offline-safe generate as on our machines (see scripts/prisma-generate.js).
RUN node scripts/prisma-generate.js

EXPOSE 3000
CMD ["npm", "run", "start:api"]
