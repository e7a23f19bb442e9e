import { Body, Controller, Get, HttpCode, Param, Post, Query, Req, Res } from '@nestjs/common';
import type { Response } from 'express';
import { apiKeyCreateBody, apiKeyListQuery, createApiKeyAnswer, listApiKeyPage } from '../../../auth/api-keys.controller';
import { ApiKeysService } from '@tokenmeter/auth';
import { ROLES } from '../../../auth/principal';
import { parseInput } from '../../../common/validation';
import { type PageRequest, pageContext, pageQuery, pathId } from '../../page-context';
import { CsrfField, DataTable, Layout, NextPage, type PageContext, renderPage, Time, withQuery } from '../../ui';
import { WebPages } from '../../web-session.guard';
import { actorOf, canWrite, Field, FilterForm, formBody, Notice, Select } from './admin-ui';

const NOTICES = {
  revoked: 'Key revoked (audited as api_key.revoke). It stops working at once here and within seconds in every API process.',
};

/** API keys: GET /admin/api-keys, POST /admin/api-keys (the key shown once), DELETE /admin/api-keys/{id}. */
@WebPages('admin')
@Controller('app/admin/keys')
export class AdminKeysController {
  constructor(private readonly keys: ApiKeysService) {}

  @Get()
  async list(@Req() req: PageRequest, @Query() query: Record<string, unknown>) {
    const ctx = pageContext(req);
    const q = pageQuery(apiKeyListQuery, query);
    const page = await listApiKeyPage(this.keys, q);
    return renderPage(
      <Layout ctx={ctx} title="API keys">
        <Notice done={query.done} messages={NOTICES} />
        <FilterForm action="/app/admin/keys" label="API key filters">
          <Field id="filter-account" name="account_id" label="Account" value={q.account_id} />
        </FilterForm>
        <DataTable
          id="keys-table"
          caption="API keys, newest first (never their secrets)"
          rows={page.data}
          empty="No keys."
          columns={[
            { label: 'Prefix', cell: (k) => <code>{k.prefix}</code> },
            { label: 'Name', cell: (k) => k.name ?? '' },
            { label: 'Role', cell: (k) => k.role },
            { label: 'Account', cell: (k) => (k.account_id ? <a href={`/app/admin/accounts/${encodeURIComponent(k.account_id)}`}>{k.account_id}</a> : '') },
            { label: 'Created (UTC)', cell: (k) => <Time at={k.created_at} /> },
            { label: 'Last used (UTC)', cell: (k) => <Time at={k.last_used_at} /> },
            { label: 'Id', cell: (k) => <code>{k.id}</code> },
            {
              label: 'Status',
              cell: (k) =>
                k.revoked_at ? (
                  <>
                    Revoked <Time at={k.revoked_at} />
                  </>
                ) : canWrite(ctx) ? (
                  <form method="post" action={`/app/admin/keys/${encodeURIComponent(k.id)}/revoke`}>
                    <CsrfField ctx={ctx} />
                    <button type="submit" class="secondary" aria-label={`Revoke ${k.prefix}${k.name ? ` (${k.name})` : ''}`}>
                      Revoke
                    </button>
                  </form>
                ) : (
                  'Active'
                ),
            },
          ]}
        />
        <NextPage
          path="/app/admin/keys"
          query={{ account_id: q.account_id, limit: typeof query.limit === 'string' ? query.limit : undefined }}
          cursor={page.next_cursor}
        />
        {canWrite(ctx) && <CreateForm ctx={ctx} accountId={q.account_id} />}
      </Layout>,
    );
  }

  /** The key is in this answer only (not in a redirect's URL): it is stored as its sha256 and never shown again. */
  @Post()
  @HttpCode(201)
  async create(@Req() req: PageRequest, @Body() body: unknown) {
    const ctx = pageContext(req);
    const input = parseInput(apiKeyCreateBody, formBody(body), 'body');
    const k = await createApiKeyAnswer(this.keys, input, actorOf(req));
    return renderPage(
      <Layout ctx={ctx} title="API key created">
        <p class="notice" role="status">
          Key {k.prefix} created ({k.role}
          {k.account_id ? ` for account ${k.account_id}` : ''}; audited as api_key.create). Copy it now: it is shown this once and cannot be recovered.
        </p>
        <label for="new-key">The API key</label>
        <input id="new-key" class="secret" type="text" readOnly value={k.key} spellcheck={false} autocomplete="off" />
        <p>
          <a href={withQuery('/app/admin/keys', { account_id: k.account_id ?? undefined })}>Back to the API keys</a>
        </p>
      </Layout>,
    );
  }

  @Post(':id/revoke')
  @HttpCode(303)
  async revoke(@Req() req: PageRequest, @Res({ passthrough: true }) res: Response, @Param('id') rawId: string) {
    const id = pathId('id', rawId);
    await this.keys.revokeApiKey(id, actorOf(req));
    res.redirect(303, '/app/admin/keys?done=revoked');
  }
}

function CreateForm(props: { ctx: PageContext; accountId?: string }) {
  return (
    <section aria-labelledby="create-key">
      <h2 id="create-key">Create an API key</h2>
      <form method="post" action="/app/admin/keys" class="stack" id="create-key-form">
        <CsrfField ctx={props.ctx} />
        <Select id="key-role" name="role" label="Role" value="account" options={ROLES.map((r) => [r, r])} />
        <Field id="key-account" name="account_id" label="Account (account keys only)" value={props.accountId} help="Required for an account key; empty for admin and auditor keys." />
        <Field id="key-name" name="name" label="Name (optional)" />
        <button type="submit">Create key</button>
      </form>
    </section>
  );
}
