import { isIP } from 'node:net';
import { z } from 'zod';

/**
 * Configuration is read from the environment once, at start-up, into a typed object.
 * Defaults match `npm run services:up`, so nothing needs setting on a developer machine;
 * in production (NODE_ENV=production) secrets have no defaults and must be set.
 */
export interface TokenmeterConfig {
  env: 'development' | 'test' | 'production';
  databaseUrl: string;
  /**
   * DATABASE_READ_URL: a streaming replica of databaseUrl's database that serves the dashboard and
   * audit reads (libs/db READ_DATABASE); null: they read the primary like everything else.
   */
  databaseReadUrl: string | null;
  databasePoolSize: number;
  kafka: {
    brokers: string[];
    clientId: string;
    groupId: string;
    topic: string;
    dlqTopic: string;
    /** Partitions the usage topic is created with (ingestor, demo); a topic that exists keeps its own count, read from the broker where it matters. */
    topicPartitions: number;
  };
  ingest: {
    /** Messages per database transaction. */
    chunkSize: number;
    /** Partitions processed in parallel by one ingestor. */
    partitionConcurrency: number;
    /** Port of the ingestor's Prometheus endpoint (GET /metrics); 0 lets the OS choose one. */
    metricsPort: number;
    /**
     * Ingestor processes run by one `start:ingestor` (node:cluster), all in the same consumer
     * group: one Node main thread parses and prices for every lane, so a second process is what
     * puts a second core to work. Metrics are aggregated on the one metrics port.
     */
    processes: number;
    /**
     * Kafka consumer session timeout: how long the group waits for a member that stopped
     * heartbeating (killed, frozen, cut off) before moving its partitions to the others. Also how
     * long a replacement started at once waits for it (npm run chaos:ingestor-kill).
     */
    sessionTimeoutMs: number;
  };
  api: {
    port: number;
    ingestToken: string;
    /** TOKENMETER_ADMIN_KEY: when set, an admin API key with exactly this secret exists after start-up. */
    adminKey: string | null;
    /**
     * Express `trust proxy` (API_TRUST_PROXY): which proxies may state the client address in
     * X-Forwarded-For. false: the client is the TCP peer. A hop count or a list of proxy
     * addresses/subnets otherwise; never `true`, which would let any client pick its own address.
     */
    trustProxy: false | number | string[];
    /** Failed authentications allowed per client address per window before it is answered 429. */
    authFailures: { limit: number; windowSeconds: number };
    /** The web dashboard (/app): how long a signed-in browser stays signed in, and a dashboard link stays usable. */
    web: { sessionHours: number; linkMinutes: number; publicBaseUrl: string };
  };
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** POST /v1/spend/authorize (docs/limits.md, "Holds"). */
  authorize: {
    /** A hold whose event never arrives (and the watermark never says so) is released after this. */
    holdTtlSeconds: number;
    /** A hold is released once every partition's ingest has passed its time by this much (its event is not coming). */
    holdGraceSeconds: number;
    /** Output tokens a hold assumes when the request sends no max_output_tokens and the model has no max_output_tokens. */
    fallbackMaxOutputTokens: number;
    /** A hold's event is looked for from this long before the hold: the gateway's clock may be behind ours. */
    clockSkewSeconds: number;
    /** Retry-After of a 429 is at most this. */
    maxRetryAfterSeconds: number;
    /** The lean listener serving only POST /v1/spend/authorize (docs/limits.md, "The lean port"); 0: none. */
    port: number;
  };
  invoicing: {
    /** A month is closed only once ingestion has passed its end by this many minutes. */
    closeGraceMinutes: number;
  };
  /** The notifier (apps/notifier, docs/limits.md "Alerts"): budget alerts out of the outbox to Kafka. */
  alerts: {
    /** Kafka topic the alerts are published to (key: account id). */
    topic: string;
    /** Besides LISTEN tokenmeter_alerts, the outbox is looked at this often (a missed notification waits at most this long). */
    pollIntervalMs: number;
    /** Alerts claimed, published and committed per transaction. */
    batchSize: number;
    /**
     * credits_low thresholds, percents of the available credits at the latest funding, e.g. "20,5"
     * (docs/credits.md "Credit alerts"; parsed and range-checked by parseCreditLowThresholds).
     */
    creditsLowThresholds: string;
  };
  /** Webhook deliveries (docs/limits.md "Webhooks"). */
  webhooks: {
    /** Requests in flight at once, per notifier process. */
    concurrency: number;
    /** One request's timeout; a timeout is a failed attempt. */
    timeoutMs: number;
    /** Delays before the 2nd, 3rd, ... attempt (jittered by +-20%); after the last, the delivery is failed. */
    retryScheduleMs: number[];
    /** How often due deliveries (retries) are looked for. */
    pollIntervalMs: number;
    /** After a secret rotation, the previous secret keeps signing for this long. */
    secretOverlapHours: number;
  };
  stripe: {
    apiKey: string;
    /** Base URL of the Stripe API (stripe-mock in development and tests). */
    apiBase: string;
    webhookSecret: string;
    /** Stripe requests in flight at once, across all invoices being pushed. */
    maxInFlight: number;
  };
}

export class ConfigError extends Error {
  constructor(readonly variable: string, message: string) {
    super(`Invalid configuration: ${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

const DEV_INGEST_TOKEN = 'dev-ingest-token';

/**
 * The development database of `npm run services:up`: DATABASE_URL's default, and the one place
 * this literal lives (scripts/start.sh and test.sh pass it on to their processes, test helpers
 * derive the test database from it).
 */
export const DEFAULT_DATABASE_URL = 'postgresql://tokenmeter:tokenmeter@127.0.0.1:5432/tokenmeter';

const brokerList = z
  .string()
  .transform((s) => s.split(',').map((b) => b.trim()).filter(Boolean))
  .refine((list) => list.length > 0 && list.every((b) => /^[^\s:/]+:\d{1,5}$/.test(b)), {
    message: 'expected a comma-separated list of host:port',
  });

const port = z.coerce.number().int().min(1).max(65535);

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A comma-separated list of durations ("5s,30s,2m,1h"; units ms, s, m, h), in milliseconds. */
const durationList = z.string().transform((s, ctx): number[] => {
  const items = s.split(',').map((d) => d.trim());
  const out: number[] = [];
  for (const item of items) {
    const m = /^(\d{1,9})(ms|s|m|h)$/.exec(item);
    const ms = m ? Number(m[1]) * DURATION_UNITS_MS[m[2]] : NaN;
    if (!m || ms < 1 || ms > 7 * 86_400_000) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${item}" is not a duration such as 500ms, 5s, 2m or 1h (at most 7 days)` });
      return z.NEVER;
    }
    out.push(ms);
  }
  if (out.length > 30) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'at most 30 retries' });
    return z.NEVER;
  }
  return out;
});

const NAMED_PROXY_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** `false`, a hop count, or a comma-separated list of proxy IPs, subnets (a.b.c.d/nn) and proxy-addr's named ranges. */
const trustProxy = z
  .string()
  .transform((s, ctx): false | number | string[] => {
    const value = s.trim();
    if (value === '' || value === 'false') return false;
    if (/^\d+$/.test(value)) return Number(value);
    const list = value.split(',').map((v) => v.trim()).filter(Boolean);
    const bad = list.find((item) => !NAMED_PROXY_RANGES.has(item) && !isAddressOrSubnet(item));
    if (value === 'true' || bad !== undefined) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message:
          value === 'true'
            ? '"true" would trust X-Forwarded-For from anyone (a client could choose its own address); give the hop count or the proxy addresses'
            : `"${bad}" is not an IP address, a subnet (10.0.0.0/8) or one of loopback, linklocal, uniquelocal`,
      });
      return z.NEVER;
    }
    return list;
  });

function isAddressOrSubnet(item: string): boolean {
  const [address, bits, ...rest] = item.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

const postgresUrl = z.string().refine((u) => /^postgres(ql)?:\/\//.test(u), { message: 'expected a postgresql:// URL' });

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  DATABASE_URL: postgresUrl.default(DEFAULT_DATABASE_URL),
  DATABASE_READ_URL: postgresUrl.optional(),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  KAFKA_BROKERS: brokerList.default('127.0.0.1:9092'),
  KAFKA_CLIENT_ID: z.string().min(1).default('tokenmeter'),
  KAFKA_GROUP_ID: z.string().min(1).default('tokenmeter-ingestor'),
  KAFKA_USAGE_TOPIC: z.string().min(1).default('gateway.usage.v1'),
  KAFKA_DLQ_TOPIC: z.string().min(1).optional(),
  // 120: room for 100x without adding partitions later, which remaps account keys (docs/scaling.md).
  KAFKA_USAGE_TOPIC_PARTITIONS: z.coerce.number().int().min(1).max(1000).default(120),
  INGEST_CHUNK_SIZE: z.coerce.number().int().min(1).max(50_000).default(5000),
  INGEST_PARTITION_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(6),
  INGESTOR_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  INGESTOR_PROCESSES: z.coerce.number().int().min(1).max(64).default(1),
  // The broker refuses less than group.min.session.timeout.ms (6 s by default).
  INGEST_SESSION_TIMEOUT_MS: z.coerce.number().int().min(6000).max(300_000).default(30_000),
  PORT: port.default(3000),
  TOKENMETER_INGEST_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  // Normally a key from `npm run cli -- keys create` (tm_live_<8>_<32>); any other secret must be
  // long enough not to be guessed.
  TOKENMETER_ADMIN_KEY: z
    .string()
    .regex(/^\S+$/, 'must not contain whitespace')
    .min(24, 'must be at least 24 characters (generate one with `npm run cli -- keys generate`)')
    .optional(),
  API_TRUST_PROXY: trustProxy.default('false'),
  AUTH_FAILURE_LIMIT: z.coerce.number().int().min(1).max(1_000_000).default(20),
  AUTH_FAILURE_WINDOW_SECONDS: z.coerce.number().int().min(1).max(24 * 60 * 60).default(60),
  WEB_SESSION_HOURS: z.coerce.number().int().min(1).max(24 * 30).default(12),
  DASHBOARD_LINK_MINUTES: z.coerce.number().int().min(1).max(7 * 24 * 60).default(60),
  // Where browsers reach this API (dashboard links are absolute URLs); never taken from a request's Host header.
  PUBLIC_BASE_URL: z.string().url().regex(/^https?:\/\/[^/]+$/, 'expected scheme://host[:port] with no path').optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  AUTHORIZE_HOLD_TTL_SECONDS: z.coerce.number().int().min(1).max(24 * 60 * 60).default(600),
  AUTHORIZE_HOLD_GRACE_SECONDS: z.coerce.number().int().min(0).max(24 * 60 * 60).default(60),
  AUTHORIZE_FALLBACK_MAX_OUTPUT_TOKENS: z.coerce.number().int().min(1).max(999_999_999).default(32_768),
  AUTHORIZE_CLOCK_SKEW_SECONDS: z.coerce.number().int().min(0).max(24 * 60 * 60).default(60),
  AUTHORIZE_MAX_RETRY_AFTER_SECONDS: z.coerce.number().int().min(1).max(3600).default(5),
  AUTHORIZE_PORT: z.coerce.number().int().min(0).max(65535).default(3001),
  INVOICE_CLOSE_GRACE_MINUTES: z.coerce.number().int().min(0).max(7 * 24 * 60).default(60),
  KAFKA_ALERTS_TOPIC: z.string().min(1).default('tokenmeter.alerts.v1'),
  ALERTS_POLL_INTERVAL_MS: z.coerce.number().int().min(50).max(3_600_000).default(5000),
  ALERTS_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(100),
  CREDITS_LOW_THRESHOLDS: z
    .string()
    .regex(/^\s*(\d{1,3}(\.\d{1,4})?\s*(,\s*\d{1,3}(\.\d{1,4})?\s*)*)?$/, 'expected comma-separated percents such as "20,5"')
    .default('20,5'),
  WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(16),
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  // About x4 each time: the 8th and last attempt is ~17 h after the first.
  WEBHOOK_RETRY_SCHEDULE: durationList.default('5s,30s,2m,10m,1h,4h,12h'),
  WEBHOOK_POLL_INTERVAL_MS: z.coerce.number().int().min(50).max(3_600_000).default(2000),
  WEBHOOK_SECRET_OVERLAP_HOURS: z.coerce.number().int().min(0).max(24 * 30).default(24),
  STRIPE_API_KEY: z.string().regex(/^(sk|rk)_(test|live)_\S+$/, 'expected a Stripe secret key (sk_test_...)').optional(),
  STRIPE_API_BASE: z.string().url().default('http://127.0.0.1:12111'),
  STRIPE_WEBHOOK_SECRET: z.string().min(1).optional(),
  STRIPE_MAX_IN_FLIGHT: z.coerce.number().int().min(1).max(50).default(10),
});

export function loadConfig(env: NodeJS.ProcessEnv = process.env): TokenmeterConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(String(issue.path[0] ?? 'environment'), issue.message);
  }
  const e = parsed.data;
  if (e.NODE_ENV === 'production' && !e.TOKENMETER_INGEST_TOKEN) {
    throw new ConfigError('TOKENMETER_INGEST_TOKEN', 'required when NODE_ENV=production');
  }
  if (e.NODE_ENV === 'production' && (!e.STRIPE_API_KEY || !e.STRIPE_WEBHOOK_SECRET)) {
    throw new ConfigError(e.STRIPE_API_KEY ? 'STRIPE_WEBHOOK_SECRET' : 'STRIPE_API_KEY', 'required when NODE_ENV=production');
  }
  return {
    env: e.NODE_ENV,
    databaseUrl: e.DATABASE_URL,
    databaseReadUrl: e.DATABASE_READ_URL ?? null,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    kafka: {
      brokers: e.KAFKA_BROKERS,
      clientId: e.KAFKA_CLIENT_ID,
      groupId: e.KAFKA_GROUP_ID,
      topic: e.KAFKA_USAGE_TOPIC,
      dlqTopic: e.KAFKA_DLQ_TOPIC ?? `${e.KAFKA_USAGE_TOPIC}.dlq`,
      topicPartitions: e.KAFKA_USAGE_TOPIC_PARTITIONS,
    },
    ingest: {
      chunkSize: e.INGEST_CHUNK_SIZE,
      partitionConcurrency: e.INGEST_PARTITION_CONCURRENCY,
      metricsPort: e.INGESTOR_METRICS_PORT,
      processes: e.INGESTOR_PROCESSES,
      sessionTimeoutMs: e.INGEST_SESSION_TIMEOUT_MS,
    },
    api: {
      port: e.PORT,
      ingestToken: e.TOKENMETER_INGEST_TOKEN ?? DEV_INGEST_TOKEN,
      adminKey: e.TOKENMETER_ADMIN_KEY ?? null,
      trustProxy: e.API_TRUST_PROXY,
      authFailures: { limit: e.AUTH_FAILURE_LIMIT, windowSeconds: e.AUTH_FAILURE_WINDOW_SECONDS },
      web: {
        sessionHours: e.WEB_SESSION_HOURS,
        linkMinutes: e.DASHBOARD_LINK_MINUTES,
        publicBaseUrl: e.PUBLIC_BASE_URL ?? `http://127.0.0.1:${e.PORT}`,
      },
    },
    logLevel: e.LOG_LEVEL,
    authorize: {
      holdTtlSeconds: e.AUTHORIZE_HOLD_TTL_SECONDS,
      holdGraceSeconds: e.AUTHORIZE_HOLD_GRACE_SECONDS,
      fallbackMaxOutputTokens: e.AUTHORIZE_FALLBACK_MAX_OUTPUT_TOKENS,
      clockSkewSeconds: e.AUTHORIZE_CLOCK_SKEW_SECONDS,
      maxRetryAfterSeconds: e.AUTHORIZE_MAX_RETRY_AFTER_SECONDS,
      port: e.AUTHORIZE_PORT,
    },
    invoicing: { closeGraceMinutes: e.INVOICE_CLOSE_GRACE_MINUTES },
    alerts: {
      topic: e.KAFKA_ALERTS_TOPIC,
      pollIntervalMs: e.ALERTS_POLL_INTERVAL_MS,
      batchSize: e.ALERTS_BATCH_SIZE,
      creditsLowThresholds: e.CREDITS_LOW_THRESHOLDS,
    },
    webhooks: {
      concurrency: e.WEBHOOK_CONCURRENCY,
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      retryScheduleMs: e.WEBHOOK_RETRY_SCHEDULE,
      pollIntervalMs: e.WEBHOOK_POLL_INTERVAL_MS,
      secretOverlapHours: e.WEBHOOK_SECRET_OVERLAP_HOURS,
    },
    stripe: {
      apiKey: e.STRIPE_API_KEY ?? 'sk_test_tokenmeter',
      apiBase: e.STRIPE_API_BASE,
      webhookSecret: e.STRIPE_WEBHOOK_SECRET ?? 'whsec_tokenmeter_dev',
      maxInFlight: e.STRIPE_MAX_IN_FLIGHT,
    },
  };
}
