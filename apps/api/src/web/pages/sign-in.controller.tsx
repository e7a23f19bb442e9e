import { Body, Controller, Get, HttpCode, Param, Post, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AuthFailureThrottle, refuseIfThrottled } from '../../auth/auth-failure-throttle';
import { ApiError } from '../../common/api-error';
import { Layout, renderPage } from '../ui';
import { assertSameOriginForm, OpenWebPages, SESSION_COOKIE, sessionTokenOf } from '../web-session.guard';
import { type StartedSession, WebSessionsService } from '../web-sessions.service';

/** Only our own pages are places to go back to after signing in (no open redirect). */
function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/app(\/[A-Za-z0-9_\-./?=&%:+]*)?$/.test(next) && !next.startsWith('//') ? next : '/app';
}

function SignInPage(props: { next: string; error?: string }) {
  return (
    <Layout ctx={null} title="Sign in">
      <form method="post" action="/app/sign-in" class="sign-in">
        {props.error && (
          <p class="error" role="alert" id="sign-in-error">
            {props.error}
          </p>
        )}
        <input type="hidden" name="next" value={props.next} />
        <label for="api_key">API key</label>
        <input
          id="api_key"
          name="api_key"
          type="password"
          autocomplete="off"
          required
          spellcheck={false}
          aria-describedby={props.error ? 'sign-in-error key-help' : 'key-help'}
        />
        <p id="key-help" class="help">
          An account or admin key (tm_live_...). It is checked once and never stored in your browser: you get a session cookie instead.
        </p>
        <button type="submit">Sign in</button>
      </form>
    </Layout>
  );
}

/** Sign-in with an API key, one-time dashboard links, sign-out. */
@OpenWebPages()
@Controller('app')
export class SignInController {
  constructor(
    private readonly sessions: WebSessionsService,
    private readonly throttle: AuthFailureThrottle,
  ) {}

  @Get('sign-in')
  async signInForm(@Req() req: Request, @Res({ passthrough: true }) res: Response, @Query('next') next?: string) {
    const token = sessionTokenOf(req);
    if (token && (await this.sessions.resolve(token))) return res.redirect(303, safeNext(next));
    return renderPage(<SignInPage next={safeNext(next)} />);
  }

  @Post('sign-in')
  async signIn(@Req() req: Request, @Res({ passthrough: true }) res: Response, @Body() body: Record<string, unknown>) {
    assertSameOriginForm(req, null);
    // The same throttle as bearer keys: a form is no way around it.
    refuseIfThrottled(this.throttle, req, res);
    const key = typeof body?.api_key === 'string' ? body.api_key : '';
    const started = key.length > 0 && key.length <= 256 ? await this.sessions.signIn(key) : undefined;
    if (!started) {
      this.throttle.recordFailure(req.ip);
      res.status(401);
      return renderPage(<SignInPage next={safeNext(body?.next)} error="That API key is not valid (or has been revoked)." />);
    }
    setSessionCookie(req, res, started);
    return res.redirect(303, started.session.role === 'account' ? safeNext(body?.next) : safeNext(body?.next ?? '/app/admin'));
  }

  /**
   * Opening a dashboard link signs this browser in as its account, once. The answer is a page that
   * moves on to /app by itself (meta refresh) rather than a redirect: links are opened from other
   * sites, and a SameSite=Strict cookie set during a cross-site redirect chain is not sent on its
   * next hop, whereas a navigation started by our own page is same-site.
   */
  @Get('link/:token')
  async openLink(@Req() req: Request, @Res({ passthrough: true }) res: Response, @Param('token') token: string) {
    refuseIfThrottled(this.throttle, req, res);
    const started = await this.sessions.openDashboardLink(token);
    if (!started) {
      this.throttle.recordFailure(req.ip);
      throw new ApiError(404, 'not_found', 'This dashboard link has already been used or has expired. Ask for a new one.');
    }
    setSessionCookie(req, res, started);
    res.setHeader('Referrer-Policy', 'no-referrer');
    return renderPage(
      <Layout ctx={null} title="Signed in" head={<meta http-equiv="refresh" content="0; url=/app" />}>
        <p>
          You are signed in. <a href="/app">Continue to your dashboard</a>.
        </p>
      </Layout>,
    );
  }

  @Post('sign-out')
  @HttpCode(303)
  async signOut(@Req() req: Request, @Res({ passthrough: true }) res: Response) {
    const token = sessionTokenOf(req);
    const session = token ? await this.sessions.resolve(token) : undefined;
    if (token && session) {
      assertSameOriginForm(req, session.csrfToken);
      await this.sessions.signOut(token);
    }
    res.clearCookie(SESSION_COOKIE, { path: '/app', httpOnly: true, sameSite: 'strict', secure: req.secure });
    res.redirect(303, '/app/sign-in');
  }
}

function setSessionCookie(req: Request, res: Response, started: StartedSession): void {
  res.cookie(SESSION_COOKIE, started.token, {
    httpOnly: true,
    sameSite: 'strict',
    // Behind TLS (directly, or a proxy trusted by API_TRUST_PROXY that says so) the cookie never travels in clear.
    secure: req.secure,
    path: '/app',
    expires: started.session.expiresAt,
  });
}
