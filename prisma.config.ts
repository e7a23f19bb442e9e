import { defineConfig } from 'prisma/config';

// Prisma 7 reads the connection string from here rather than from schema.prisma.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations', seed: 'ts-node prisma/seed.ts' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://tokenmeter:tokenmeter@127.0.0.1:5432/tokenmeter' },
});
