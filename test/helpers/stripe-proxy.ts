import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An HTTP proxy in front of stripe-mock that behaves like Stripe where stripe-mock does not:
 *
 * - Idempotency: the first response for an Idempotency-Key is stored and replayed for every later
 *   request with that key (without reaching stripe-mock, so no second object is "created"); the
 *   same key with different parameters is a 400 idempotency_error; a key still in flight is a 409
 *   idempotency_key_in_use. (stripe-mock ignores keys and returns a fresh id on every create.)
 * - A ledger of the requests that reached "Stripe" (= stripe-mock): what was really created.
 * - Fault injection per request: fail BEFORE the request reaches Stripe (503, or a dropped
 *   connection), or AFTER Stripe processed it (the response is lost: the connection is dropped).
 */
export interface LedgerEntry {
  method: string;
  path: string;
  idempotencyKey: string | undefined;
  params: string;
  status: number;
  responseId: string | undefined;
}

export type FaultMode = 'before_503' | 'before_drop' | 'after_drop' | 'rate_limit';

export interface Fault {
  /** e.g. 'POST /v1/invoices' (exact), or a predicate on method + path. */
  match: string | ((method: string, path: string) => boolean);
  mode: FaultMode;
  /** How many matching requests fail; Infinity for "until cleared". */
  times: number;
}

interface Stored {
  params: string;
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export class StripeProxy {
  private server: http.Server | undefined;
  private readonly stored = new Map<string, Stored>();
  private readonly inFlight = new Set<string>();
  private faults: Fault[] = [];
  readonly ledger: LedgerEntry[] = [];
  /** Called as each request arrives, before anything else (e.g. to cut the network at a chosen request). */
  onRequest: ((method: string, path: string) => void) | undefined;
  /** Every request the proxy received (replays and injected failures included). */
  received = 0;
  replays = 0;
  port = 0;

  constructor(private readonly upstream = new URL(process.env.STRIPE_API_BASE ?? 'http://127.0.0.1:12111')) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => void this.handle(req, Buffer.concat(chunks), res));
    });
    this.server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  inject(fault: Fault): void {
    this.faults.push({ ...fault });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Objects Stripe really created (or acted on) for a method + path, e.g. count('POST', '/v1/invoices'). */
  count(method: string, path: string | RegExp): number {
    return this.ledger.filter(
      (e) => e.method === method && e.status < 300 && (typeof path === 'string' ? e.path === path : path.test(e.path)),
    ).length;
  }

  private takeFault(method: string, path: string): Fault | undefined {
    const fault = this.faults.find(
      (f) => f.times > 0 && (typeof f.match === 'string' ? f.match === `${method} ${path}` : f.match(method, path)),
    );
    if (fault) fault.times--;
    return fault;
  }

  private async handle(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): Promise<void> {
    this.received++;
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0];
    const key = header(req, 'idempotency-key');
    const params = body.toString('utf8');
    this.onRequest?.(method, path);

    // Faults are decided first, so "Stripe processed it but the response was lost" also hits
    // replays: that is what a client that keeps crashing after the call would see.
    const fault = this.takeFault(method, path);
    if (fault?.mode === 'before_503') return json(res, 503, { error: { type: 'api_error', message: 'injected: unavailable' } });
    if (fault?.mode === 'rate_limit') return json(res, 429, { error: { type: 'rate_limit_error', message: 'injected: too many requests' } });
    if (fault?.mode === 'before_drop') {
      req.socket.destroy();
      return;
    }

    let response: { status: number; headers: http.IncomingHttpHeaders; body: Buffer; replayed: boolean };
    const prior = key && method === 'POST' ? this.stored.get(key) : undefined;
    if (prior) {
      if (prior.params !== params) {
        return json(res, 400, {
          error: { type: 'idempotency_error', message: `Keys for idempotent requests can only be used with the same parameters (${key})` },
        });
      }
      this.replays++;
      response = { ...prior, replayed: true };
    } else {
      if (key && method === 'POST' && this.inFlight.has(key)) {
        return json(res, 409, { error: { type: 'invalid_request_error', code: 'idempotency_key_in_use', message: 'in flight' } });
      }
      if (key && method === 'POST') this.inFlight.add(key);
      try {
        const upstream = await forward(this.upstream, req, body);
        let responseId: string | undefined;
        try {
          responseId = (JSON.parse(upstream.body.toString('utf8')) as { id?: string }).id;
        } catch {
          responseId = undefined;
        }
        this.ledger.push({ method, path, idempotencyKey: key, params, status: upstream.status, responseId });
        // Stripe stores the outcome of every request that reached it, errors other than 5xx included.
        if (key && method === 'POST' && upstream.status < 500) this.stored.set(key, { params, ...upstream });
        response = { ...upstream, replayed: false };
      } finally {
        if (key) this.inFlight.delete(key);
      }
    }
    if (fault?.mode === 'after_drop') {
      req.socket.destroy();
      return;
    }
    res.writeHead(response.status, { ...pick(response.headers), ...(response.replayed ? { 'idempotent-replayed': 'true' } : {}) });
    res.end(response.body);
  }
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function pick(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const k of ['content-type', 'request-id', 'stripe-version']) if (headers[k]) out[k] = headers[k];
  return out;
}

function forward(
  upstream: URL,
  req: http.IncomingMessage,
  body: Buffer,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const headers = { ...req.headers, host: upstream.host, 'content-length': String(body.length) };
    const out = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    out.on('error', reject);
    out.end(body);
  });
}

/** A form-encoded add_lines body (`lines[0][amount]=..&lines[0][metadata][line_key]=..`) as one object per line. */
export function addedLines(params: string): { amount: string; description: string; metadata: Record<string, string> }[] {
  const lines: { amount: string; description: string; metadata: Record<string, string> }[] = [];
  for (const [name, value] of new URLSearchParams(params)) {
    const m = /^lines\[(\d+)\]\[(\w+)\](?:\[(\w+)\])?$/.exec(name);
    if (!m) continue;
    const line = (lines[Number(m[1])] ??= { amount: '', description: '', metadata: {} });
    if (m[2] === 'metadata' && m[3]) line.metadata[m[3]] = value;
    else if (m[2] === 'amount' || m[2] === 'description') line[m[2]] = value;
  }
  return lines;
}

/** POST /v1/invoices/{id}/add_lines */
export const ADD_LINES_PATH = /^\/v1\/invoices\/[^/]+\/add_lines$/;
