import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { PriceBookCache } from '@tokenmeter/ingest';
import { CurrentPrincipal, Roles, type Principal } from '../auth/principal';
import { ApiAnswer } from '../common/openapi';
import { instant, ValidQuery } from '../common/validation';
import { PricesSchema, type PriceJson, type PricesJson } from './prices-responses';

const pricesQuery = z.object({ at: instant.optional().describe('RFC 3339 instant; default now') });

/**
 * The list price in force at an instant, per model, from the same in-memory PriceBook the
 * ingestor prices with (so this page and the receipts cannot disagree). Account overrides are
 * not applied here: receipts show the override that priced each event.
 */
@ApiTags('prices')
@ApiBearerAuth()
@Controller('v1/prices')
@Roles('account', 'admin')
export class PricesController {
  constructor(private readonly priceBooks: PriceBookCache) {}

  @Get()
  @ApiOperation({ summary: 'Price per model in force now, or at any instant with ?at=' })
  @ApiAnswer(PricesSchema)
  async list(@CurrentPrincipal() _principal: Principal, @ValidQuery(pricesQuery) q: z.output<typeof pricesQuery>): Promise<PricesJson> {
    const at = q.at ?? new Date();
    const { book } = await this.priceBooks.current();
    const prices: PriceJson[] = [];
    for (const model of book.models()) {
      const version = book.versionAt(model, at);
      // A model whose first price starts after `at` had no price then: it is absent, not zero.
      if (!version) continue;
      prices.push({
        model,
        price_version_id: version.id,
        effective_from: version.effectiveFrom.toISOString(),
        input_per_mtok: version.inputPerMTok.toString(),
        output_per_mtok: version.outputPerMTok.toString(),
        cache_read_per_mtok: version.cacheReadPerMTok.toString(),
        // null: cache writes are charged at the input rate.
        cache_write_per_mtok: version.cacheWritePerMTok === null ? null : version.cacheWritePerMTok.toString(),
      });
    }
    return { at: at.toISOString(), prices };
  }
}
