import { defineConfig } from 'prisma/config';
import { loadConfig } from './libs/config/src/config';

// Prisma 7 reads the connection string from here rather than from schema.prisma; it comes from the
// same validated configuration as the apps' (the prisma CLI loads this file without our path aliases).
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations', seed: 'ts-node prisma/seed.ts' },
  datasource: { url: loadConfig().databaseUrl },
});
