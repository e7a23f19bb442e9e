import type { ComponentChildren, VNode } from 'preact';
import { withQuery } from '../ui';

/**
 * Small pieces shared by the account pages (usage, requests, invoices).
 */

/**
 * A GET form sends every field, empty ones as `name=`. An empty field means "no filter", so it is
 * dropped before the API's own validation (which rightly refuses an empty model name).
 */
export function formQuery(query: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(query ?? {}).filter(([, v]) => v !== ''));
}

/** A labelled text input of a filter form. */
export function Field(props: { name: string; label: string; value?: string; help?: string; size?: number }): VNode {
  const helpId = props.help ? `${props.name}-help` : undefined;
  return (
    <div class="field">
      <label for={props.name}>{props.label}</label>
      <input id={props.name} name={props.name} type="text" value={props.value ?? ''} size={props.size ?? 24} spellcheck={false} aria-describedby={helpId} />
      {props.help && (
        <span class="help" id={helpId}>
          {props.help}
        </span>
      )}
    </div>
  );
}

/** A labelled select of a filter form. */
export function Choice(props: { name: string; label: string; value: string; options: [string, string][] }): VNode {
  return (
    <div class="field">
      <label for={props.name}>{props.label}</label>
      <select id={props.name} name={props.name}>
        {props.options.map(([value, label]) => (
          <option value={value} selected={value === props.value}>
            {label}
          </option>
        ))}
      </select>
    </div>
  );
}

/** The admin's ?account_id=, carried by every form and link of an account page. */
export function KeepAccount(props: { accountId?: string }): VNode | null {
  return props.accountId ? <input type="hidden" name="account_id" value={props.accountId} /> : null;
}

/** A link to a page of the same account (keeps the admin's ?account_id=). */
export function AccountLink(props: { path: string; accountId?: string; query?: Record<string, string | undefined>; children: ComponentChildren }): VNode {
  return <a href={withQuery(props.path, { ...props.query, account_id: props.accountId })}>{props.children}</a>;
}

/** A path segment for an id (ids may contain '/', which must not become a path separator). */
export function segment(id: string): string {
  return encodeURIComponent(id);
}
