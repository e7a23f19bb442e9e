// ESLint 9 flat config: `npm run lint`, also run by scripts/test.sh in the full run.
// typescript-eslint's `recommended` set (syntax-only, no type information, so it stays fast),
// the import boundaries of docs/architecture.md, and a line-length limit.
'use strict';

const js = require('@eslint/js');
const tseslint = require('typescript-eslint');
const { defineConfig, globalIgnores } = require('eslint/config');

const APPS = ['api', 'cli', 'ingestor', 'invoicer', 'notifier'];

// `no-restricted-imports` sees the specifier as written, not the resolved file, so a relative
// import is matched by its shape: any number of `../` then the target folder. From inside apps/X
// or libs/Y the only way to reach apps/Z is `(../)+apps/Z` or `(../)+Z` (from apps/X) or
// `apps/Z` (tsconfig's baseUrl is the repo root). These patterns can over-match a same-named
// subfolder reached with `../` (there is none today) but cannot miss a real edge.
const importsOfApps = (apps) => {
  const names = apps.join('|');
  return {
    regex: `^(?:(?:\\.\\./)+(?:apps/)?|apps/)(?:${names})(?:/|$)`,
    message: 'An app does not import another app: move the shared code into a lib under libs/.',
  };
};
const LIBS_IMPORT_NO_APP = {
  regex: '^(?:(?:\\.\\./)+|\\./)?apps(?:/|$)',
  message: 'libs/ never import from apps/: the dependency points from apps to libs.',
};

// libs/billing is the pure pricing core: only decimal.js, zod, lossless-json (a JSON parser that
// keeps numbers' source text, for price maps), node:* and its own files. Everything else (Nest,
// Prisma, pg, Stripe, kafkajs, preact, other libs) is refused by an allow-list, so a new
// framework or driver cannot slip in under a name this list forgot.
const BILLING_ALLOW_ONLY = {
  regex: '^(?!(?:decimal\\.js|zod|lossless-json|node:.+|\\.\\.?/.*|@tokenmeter/billing(?:/.*)?)$)',
  message: 'libs/billing stays pure: it may import only decimal.js, zod, lossless-json, node:* and its own files.',
};
// Its own files: a relative import may not climb out of libs/billing into another lib or app.
const BILLING_STAYS_INSIDE = {
  regex: '^(?:\\.\\./)+(?:libs/|apps/|auth|config|db|ingest|invoicing|limits|prices|stripe)(?:/|$)',
  message: 'libs/billing stays pure: import other libs from a layer above it, not from billing.',
};

// libs/gateway-client is a package of its own (its package.json): besides its own files it may
// import only kafkajs, node:* and the two contract modules of libs/billing its build ships along
// (libs/gateway-client/build.ts), so a gateway installing it gets no Nest, Prisma or pg.
const GATEWAY_CLIENT_ALLOW_ONLY = {
  regex: '^(?!(?:kafkajs|node:.+|\\./.*|@tokenmeter/billing/(?:usage-event|usage-schemas))$)',
  message: 'libs/gateway-client is published alone: it may import only kafkajs, node:*, its own files and @tokenmeter/billing/usage-event|usage-schemas.',
};

const restrict = (...patterns) => ['error', { patterns }];

module.exports = defineConfig([
  globalIgnores([
    'node_modules/',
    'dist/',
    'libs/gateway-client/dist/', // the package build (npm run build:gateway-client)
    '.local/',
    'coverage/',
    'test-artifacts/',
    'libs/db/src/generated/', // Prisma's generated client (gitignored, rewritten by prisma generate)
  ]),
  {
    files: [
      '{apps,libs,test,bench,scripts,prisma}/**/*.{ts,tsx}',
      'prisma.config.ts',
    ],
    extends: [js.configs.recommended, tseslint.configs.recommended],
    linterOptions: {
      // A `// eslint-disable…` that silences nothing is reported, so they cannot go stale.
      reportUnusedDisableDirectives: 'error',
    },
    rules: {
      'max-len': ['error', {
        code: 160,
        tabWidth: 2,
        ignoreUrls: true,
        ignoreStrings: true,
        ignoreTemplateLiterals: true,
        ignoreRegExpLiterals: true,
        ignoreComments: false,
      }],
      // Off: every control character in a regex here is deliberate (escaping NUL for Postgres
      // text, JSON-escaping U+0000..U+001F, refusing control characters in input).
      'no-control-regex': 'off',
      // `import crypto = require('node:crypto')` is kept where a spec spies on the module object
      // itself (an `import * as` namespace under esModuleInterop is a copy jest cannot patch).
      '@typescript-eslint/no-require-imports': ['error', { allowAsImport: true }],
      // Unused names are errors, but `_`-prefixed ones are the house way to say "deliberately
      // unused" (destructuring a field away, a positional callback argument).
      '@typescript-eslint/no-unused-vars': ['error', {
        argsIgnorePattern: '^_',
        varsIgnorePattern: '^_',
        caughtErrorsIgnorePattern: '^_',
        destructuredArrayIgnorePattern: '^_',
        ignoreRestSiblings: true,
      }],
    },
  },
  {
    // The pg row mappers (`toRecord(r: Record<string, any>)`) take what pg's QueryResultRow is
    // anyway. These are the repositories the Prisma branch rewrites; when it lands, drop a file
    // from this list once its mapper is gone (or typed), so `any` is refused there again.
    files: [
      'libs/db/src/accounts.repository.ts',
      'libs/db/src/api-keys.repository.ts',
      'libs/db/src/event-read.repository.ts',
      'libs/db/src/price-book.repository.ts',
      'libs/db/src/price-overrides.repository.ts',
      'libs/db/src/reprice.repository.ts',
    ],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  // Import boundaries. Later blocks replace `no-restricted-imports` for the files they match, so
  // each block states every pattern that applies to its files.
  {
    files: ['libs/**/*.{ts,tsx}'],
    rules: { 'no-restricted-imports': restrict(LIBS_IMPORT_NO_APP) },
  },
  {
    files: ['libs/billing/**/*.{ts,tsx}'],
    rules: { 'no-restricted-imports': restrict(LIBS_IMPORT_NO_APP, BILLING_ALLOW_ONLY, BILLING_STAYS_INSIDE) },
  },
  {
    files: ['libs/gateway-client/src/**/*.ts'],
    ignores: ['**/*.spec.ts'],
    rules: { 'no-restricted-imports': restrict(LIBS_IMPORT_NO_APP, GATEWAY_CLIENT_ALLOW_ONLY) },
  },
  ...APPS.map((app) => ({
    files: [`apps/${app}/**/*.{ts,tsx}`],
    rules: { 'no-restricted-imports': restrict(importsOfApps(APPS.filter((other) => other !== app))) },
  })),
]);
