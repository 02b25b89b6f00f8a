/** `GET /admin/usage?from=&to=&group_by=model|key|day`: requests, tokens and errors per group. */
import { Controller, Get, Query } from '@nestjs/common';
import { RequireScope } from '../auth/auth.guard';
import { ApiError } from '../common/api-error';
import { UsageService } from '../usage/usage.service';
import { date } from './admin-input';

const GROUPS = ['model', 'key', 'day'] as const;

@RequireScope('admin')
@Controller('admin/usage')
export class UsageController {
  constructor(private readonly usage: UsageService) {}

  @Get()
  async summary(@Query() query: Record<string, unknown>) {
    const unknown = Object.keys(query).filter((k) => !['from', 'to', 'group_by'].includes(k));
    if (unknown.length > 0) throw ApiError.validation(`unknown query parameter(s): ${unknown.slice(0, 5).join(', ')}`);
    const to = query.to === undefined ? new Date() : date(query.to, 'to');
    const from = query.from === undefined ? new Date(to.getTime() - 24 * 3600_000) : date(query.from, 'from');
    if (from > to) throw ApiError.validation('`from` must not be after `to`');
    const groupBy = (query.group_by ?? 'model') as (typeof GROUPS)[number];
    if (!GROUPS.includes(groupBy)) throw ApiError.validation('`group_by` must be model, key or day');
    const rows = await this.usage.summary(from, to, groupBy);
    return { from: from.toISOString(), to: to.toISOString(), group_by: groupBy, rows };
  }
}
