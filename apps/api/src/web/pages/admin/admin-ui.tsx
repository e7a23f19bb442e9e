import type { ComponentChildren, VNode } from 'preact';
import { type Actor, requestIdOf } from '../../../common/actor';
import type { PageRequest } from '../../page-context';
import type { PageContext } from '../../ui';

/**
 * Pieces shared by the admin pages. Every write goes through the service method the JSON API's
 * route calls, with the same Actor (the session's key id and the request id), so the audit log
 * cannot tell a page action from an API call except by its request id.
 */

/** Auditors read everything and see no write form (the guard also refuses their POSTs with 403). */
export function canWrite(ctx: PageContext): boolean {
  return ctx.principal.role === 'admin';
}

/** The Actor the JSON API's @CurrentActor builds for the same principal. */
export function actorOf(req: PageRequest): Actor {
  return { keyId: req.principal?.keyId ?? null, requestId: requestIdOf(req) };
}

/**
 * A submitted form as the JSON body the API route takes: the CSRF field dropped, and empty fields
 * left out (an empty text box means "not given", which JSON says by omitting the field). Repeated
 * fields stay arrays, which the schemas refuse.
 */
export function formBody(body: unknown, drop: string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (body === null || typeof body !== 'object') return out;
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (k === '_csrf' || drop.includes(k)) continue;
    if (v === '' || v === undefined) continue;
    out[k] = v;
  }
  return out;
}

/** A checkbox: sent ("true") or not. */
export function checked(body: unknown, name: string): boolean {
  return (body as Record<string, unknown> | undefined)?.[name] === 'true';
}

/** The notice after a Post/Redirect/Get: `done` names one of the page's fixed messages (never echoed text). */
export function Notice(props: { done: unknown; messages: Record<string, string> }): VNode | null {
  const text = typeof props.done === 'string' ? props.messages[props.done] : undefined;
  if (!text) return null;
  return (
    <p class="notice" role="status">
      {text}
    </p>
  );
}

/** A labelled text input; `help` is tied to it with aria-describedby. */
export function Field(props: {
  id: string;
  name: string;
  label: string;
  value?: string;
  help?: string;
  required?: boolean;
  placeholder?: string;
  type?: string;
  inputMode?: string;
}): VNode {
  const helpId = props.help ? `${props.id}-help` : undefined;
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <input
        id={props.id}
        name={props.name}
        type={props.type ?? 'text'}
        value={props.value ?? ''}
        required={props.required}
        placeholder={props.placeholder}
        inputMode={props.inputMode}
        aria-describedby={helpId}
        spellcheck={false}
        autocomplete="off"
      />
      {props.help && (
        <p id={helpId} class="help">
          {props.help}
        </p>
      )}
    </div>
  );
}

export function Select(props: { id: string; name: string; label: string; value?: string; options: [string, string][] }): VNode {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <select id={props.id} name={props.name}>
        {props.options.map(([value, label]) => (
          <option value={value} selected={value === (props.value ?? '')}>
            {label}
          </option>
        ))}
      </select>
    </div>
  );
}

export function Checkbox(props: { id: string; name: string; label: string; checked?: boolean; help?: string }): VNode {
  const helpId = props.help ? `${props.id}-help` : undefined;
  return (
    <div class="field check">
      <input id={props.id} name={props.name} type="checkbox" value="true" checked={props.checked} aria-describedby={helpId} />
      <label for={props.id}>{props.label}</label>
      {props.help && (
        <p id={helpId} class="help">
          {props.help}
        </p>
      )}
    </div>
  );
}

/** A GET filter form (the URL is the state). */
export function FilterForm(props: { action: string; label: string; children: ComponentChildren }): VNode {
  return (
    <form method="get" action={props.action} class="filters" aria-label={props.label}>
      {props.children}
      <button type="submit">Apply filters</button>
    </form>
  );
}

/** JSON as text in a <pre> (escaped like every other text). */
export function JsonBlock(props: { value: unknown; label: string }): VNode {
  return (
    <details class="json">
      <summary>{props.label}</summary>
      <pre>{JSON.stringify(props.value, null, 2)}</pre>
    </details>
  );
}

/** The instants forms show and take: RFC 3339 in UTC, to the second. */
export function isoOrEmpty(d: Date | undefined): string {
  return d ? d.toISOString().replace('.000Z', 'Z') : '';
}

export const INSTANT_HELP = 'RFC 3339 with an offset, e.g. 2026-11-01T00:00:00Z (UTC).';
