/** Who sends the demo traffic (five fictional customers) and what their requests look like, per model. */
import type { UsageShape } from '../bench/usage-events';

export interface DemoAccount {
  id: string;
  name: string;
  email: string;
  /** The gateway's own key ids for the account (api_key_id in events), with each one's share of requests. */
  apiKeys: ReadonlyArray<readonly [id: string, share: number]>;
  /** Relative request volume: one heavy customer, a long tail, as with real API accounts. */
  volume: number;
  /** Where the account's people work: their day and week shape the traffic. */
  utcOffsetHours: number;
  /** office: weekday working hours; support: a chatbot, busy by day but never idle; batch: nightly jobs, every day. */
  pattern: 'office' | 'support' | 'batch';
  models: ReadonlyArray<readonly [model: string, share: number]>;
}

// Fictional companies; .example addresses (RFC 2606) can never reach anyone.
export const DEMO_ACCOUNTS: readonly DemoAccount[] = [
  {
    id: 'acct_northwind',
    name: 'Northwind Analytics',
    email: 'billing@northwind.example',
    apiKeys: [['key_northwind_prod', 0.7], ['key_northwind_batch', 0.22], ['key_northwind_staging', 0.08]],
    volume: 0.4,
    utcOffsetHours: 1,
    pattern: 'office',
    models: [['deepseek-r1', 0.6], ['deepseek-v3', 0.25], ['gpt-4o-mini', 0.15]],
  },
  {
    id: 'acct_acme',
    name: 'Acme Robotics',
    email: 'platform@acme-robotics.example',
    apiKeys: [['key_acme_prod', 0.85], ['key_acme_ci', 0.15]],
    volume: 0.25,
    utcOffsetHours: -5,
    pattern: 'office',
    models: [['claude-sonnet-4', 0.55], ['gpt-4o', 0.3], ['deepseek-r1', 0.15]],
  },
  {
    id: 'acct_globex',
    name: 'Globex Customer Care',
    email: 'ai-team@globex.example',
    apiKeys: [['key_globex_chatbot', 1]],
    volume: 0.18,
    utcOffsetHours: -8,
    pattern: 'support',
    models: [['gpt-4o-mini', 0.6], ['claude-3-5-haiku', 0.4]],
  },
  {
    id: 'acct_umbrella',
    name: 'Umbrella Health Research',
    email: 'ml-ops@umbrella-health.example',
    apiKeys: [['key_umbrella_batch', 0.9], ['key_umbrella_notebooks', 0.1]],
    volume: 0.12,
    utcOffsetHours: 0,
    pattern: 'batch',
    models: [['deepseek-r1', 0.7], ['deepseek-v3', 0.3]],
  },
  {
    id: 'acct_initech',
    name: 'Initech Labs',
    email: 'dev@initech.example',
    apiKeys: [['key_initech_dev', 1]],
    volume: 0.05,
    utcOffsetHours: 5.5,
    pattern: 'office',
    models: [['gpt-4o', 0.5], ['claude-sonnet-4', 0.3], ['deepseek-r1', 0.2]],
  },
];

export interface ModelProfile {
  shape: UsageShape;
  /** Prompt and answer lengths are drawn log-uniformly from these ranges (tokens). */
  prompt: readonly [number, number];
  answer: readonly [number, number];
  /** Chain-of-thought tokens (part of output), for reasoning models. */
  reasoning?: readonly [number, number];
  /** Share of requests that hit the provider's prompt cache. */
  cacheHitRate: number;
  /** Providers cache in fixed units and only past a minimum prompt length. */
  cacheUnit: number;
  cacheMinPrompt: number;
  /** Share of requests that write the cache (only Anthropic reports writes). */
  cacheWriteRate: number;
}

export const MODEL_PROFILES: Record<string, ModelProfile> = {
  'deepseek-r1': { shape: 'deepseek', prompt: [300, 12_000], answer: [80, 1_500], reasoning: [200, 6_000], cacheHitRate: 0.55, cacheUnit: 64, cacheMinPrompt: 64, cacheWriteRate: 0 },
  'deepseek-v3': { shape: 'deepseek', prompt: [200, 8_000], answer: [50, 1_200], cacheHitRate: 0.5, cacheUnit: 64, cacheMinPrompt: 64, cacheWriteRate: 0 },
  'gpt-4o': { shape: 'openai', prompt: [200, 16_000], answer: [50, 1_500], cacheHitRate: 0.45, cacheUnit: 128, cacheMinPrompt: 1024, cacheWriteRate: 0 },
  'gpt-4o-mini': { shape: 'openai', prompt: [100, 6_000], answer: [20, 800], cacheHitRate: 0.4, cacheUnit: 128, cacheMinPrompt: 1024, cacheWriteRate: 0 },
  'claude-sonnet-4': { shape: 'anthropic', prompt: [300, 20_000], answer: [100, 3_000], cacheHitRate: 0.5, cacheUnit: 1, cacheMinPrompt: 1024, cacheWriteRate: 0.12 },
  // The gateway serves Haiku through a route where it computes the buckets itself: canonical usage.
  'claude-3-5-haiku': { shape: 'canonical', prompt: [100, 4_000], answer: [20, 600], cacheHitRate: 0.35, cacheUnit: 1, cacheMinPrompt: 2048, cacheWriteRate: 0.08 },
};
