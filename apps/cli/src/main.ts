import 'reflect-metadata';
import { DomainError } from '@tokenmeter/billing';
import { loadConfig } from '@tokenmeter/config';
import { AccountsRepository, ApiKeysRepository, AuditLogRepository, createDatabase, PriceBookRepository, Transactor, WebSessionsRepository } from '@tokenmeter/db';
import { ApiKeysService, generateApiKey, ROLES, type Role } from '@tokenmeter/auth';
import { ModelsService } from '@tokenmeter/prices';
import { describeImport, priceImportRequestOf, UsageError } from './prices-import';

const USAGE = `Usage: npm run cli -- <command>

  keys create --role admin|auditor|account [--account <account_id>] [--name <name>]
      Creates a key and prints it ONCE on stdout (only its hash is stored). An auditor key reads
      everything an admin key reads and writes nothing; an account key needs --account.
  keys list [--account <account_id>]
  keys revoke <key_id>
      Other API processes stop accepting it within 5 seconds.
  keys generate
      Prints a fresh key without storing it (e.g. for TOKENMETER_ADMIN_KEY).
  prices import <file> --format litellm|openrouter [--dry-run] [--effective-at <RFC 3339>]
                [--model <book_model_id>=<key in file>]... [--mapping <file.json>]
      Reads LiteLLM's model_prices_and_context_window.json or OpenRouter's models list
      (GET /api/v1/models) and adds a price version (effective now, or at --effective-at) to
      every model of the book whose rates differ, with its context window and max output.
      A model is looked up under its own id unless --model/--mapping name its key in the file
      (an empty key leaves it out; an id the book lacks is created). --dry-run prints the diff
      and writes nothing.
`;

/** Flags that take no value. */
const BOOLEAN_FLAGS = new Set(['dry-run']);

/**
 * A deliberately tiny argv parser: positionals plus --flag value / --flag=value, and the
 * BOOLEAN_FLAGS alone. `flags` keeps a flag's last value, `lists` every value of a repeated one.
 */
export function parseArgs(argv: string[]): { positionals: string[]; flags: Map<string, string>; lists: Map<string, string[]> } {
  const positionals: string[] = [];
  const flags = new Map<string, string>();
  const lists = new Map<string, string[]>();
  const set = (name: string, value: string) => {
    flags.set(name, value);
    lists.set(name, [...(lists.get(name) ?? []), value]);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    if (BOOLEAN_FLAGS.has(arg.slice(2))) {
      set(arg.slice(2), 'true');
    } else if (eq > 0) {
      set(arg.slice(2, eq), arg.slice(eq + 1));
    } else {
      const value = argv[i + 1];
      if (value === undefined || value.startsWith('--')) throw new UsageError(`${arg} needs a value`);
      set(arg.slice(2), value);
      i++;
    }
  }
  return { positionals, flags, lists };
}

function isRole(value: string | undefined): value is Role {
  return (ROLES as readonly (string | undefined)[]).includes(value);
}

function onlyFlags(flags: Map<string, string>, allowed: string[]): void {
  for (const name of flags.keys()) if (!allowed.includes(name)) throw new UsageError(`unknown option --${name}`);
}

async function main(argv: string[]): Promise<number> {
  const { positionals, flags, lists } = parseArgs(argv);
  const [group, command, ...rest] = positionals;
  if (group === 'prices' && command === 'import') return pricesImport(rest, flags, lists);
  if (group !== 'keys' || !command) throw new UsageError(group ? `unknown command: ${positionals.join(' ')}` : 'no command given');

  if (command === 'generate') {
    onlyFlags(flags, []);
    process.stdout.write(`${generateApiKey().key}\n`);
    return 0;
  }

  const db = createDatabase(loadConfig().databaseUrl, 2);
  try {
    const keys = new ApiKeysRepository(db.pool);
    const service = new ApiKeysService(
      keys,
      new AccountsRepository(db.pool),
      new AuditLogRepository(db.pool),
      new Transactor(db.pool),
      new WebSessionsRepository(db.pool),
    );
    const actor = cliActor();
    switch (command) {
      case 'create': {
        onlyFlags(flags, ['role', 'account', 'name']);
        const role = flags.get('role');
        if (!isRole(role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
        const { key, record } = await service.createApiKey({ role, accountId: flags.get('account') ?? null, name: flags.get('name') ?? null }, actor);
        process.stderr.write(
          `Created ${record.role} key ${record.id} (prefix ${record.prefix}${record.accountId ? `, account ${record.accountId}` : ''}).\n` +
            'Store it now: it is not shown again.\n',
        );
        process.stdout.write(`${key}\n`);
        return 0;
      }
      case 'list': {
        onlyFlags(flags, ['account']);
        const list = await service.listApiKeys({ accountId: flags.get('account'), limit: 1000 });
        const rows = list.map((k) => [k.id, k.prefix, k.role, k.accountId ?? '-', k.name ?? '-', k.createdAt.toISOString(), k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : 'active']);
        const header = ['ID', 'PREFIX', 'ROLE', 'ACCOUNT', 'NAME', 'CREATED', 'STATUS'];
        const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
        for (const r of [header, ...rows]) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()}\n`);
        return 0;
      }
      case 'revoke': {
        onlyFlags(flags, []);
        if (rest.length !== 1) throw new UsageError('keys revoke takes exactly one key id');
        const revoked = await service.revokeApiKey(rest[0], actor);
        process.stdout.write(`Revoked ${revoked.id} (${revoked.prefix}) at ${revoked.revokedAt!.toISOString()}\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown command: keys ${command}`);
    }
  } finally {
    await db.close();
  }
}

/** `prices import`: the same ModelsService.importPrices as POST /admin/prices/import and the dashboard. */
async function pricesImport(rest: string[], flags: Map<string, string>, lists: Map<string, string[]>): Promise<number> {
  onlyFlags(flags, ['format', 'dry-run', 'effective-at', 'model', 'mapping']);
  if (rest.length !== 1) throw new UsageError('prices import takes exactly one file');
  const request = priceImportRequestOf({
    file: rest[0],
    format: flags.get('format'),
    effectiveAt: flags.get('effective-at'),
    mappingFile: flags.get('mapping'),
    models: lists.get('model') ?? [],
  });
  const db = createDatabase(loadConfig().databaseUrl, 2);
  try {
    const service = new ModelsService(new PriceBookRepository(db.pool), new AuditLogRepository(db.pool), new Transactor(db.pool));
    const result = await service.importPrices(request, flags.has('dry-run'), cliActor());
    process.stdout.write(describeImport(result));
    return 0;
  } finally {
    await db.close();
  }
}

/** The CLI acts with the database's authority, not a key's: audit entries carry no actor key. */
function cliActor() {
  return { keyId: null, requestId: `cli:${process.pid}` };
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`error: ${err.message}\n\n${USAGE}`);
      process.exit(2);
    }
    process.stderr.write(`error: ${err instanceof DomainError || err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
