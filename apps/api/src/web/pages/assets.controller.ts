import { Controller, Get, Header } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OpenWebPages } from '../web-session.guard';

// Read once at start-up: the stylesheet is part of the build, not user data.
const APP_CSS = readFileSync(join(__dirname, '..', 'assets', 'app.css'), 'utf8');

/** The dashboard's only asset, from this repository (no CDN, nothing fetched from elsewhere). */
@OpenWebPages()
@Controller('app/assets')
export class AssetsController {
  @Get('app.css')
  @Header('Content-Type', 'text/css; charset=utf-8')
  // The session cookie is scoped to /app, so the stylesheet may be cached; it changes with deploys only.
  @Header('Cache-Control', 'public, max-age=300')
  css(): string {
    return APP_CSS;
  }
}
