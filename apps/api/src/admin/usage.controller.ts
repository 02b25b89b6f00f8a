/** `GET /admin/usage?from=&to=&group_by=model|key|day`: requests, tokens and errors per group. */
import { Controller, Get, Query } from '@nestjs/common';
import { RequireScope } from '../auth/auth.guard';
import { parseWith } from '../common/schema';
import { ApiRoute } from '../docs/api-route';
import { UsageService } from '../usage/usage.service';
import { adminErrors, UsageQuery, UsageQueryParameters, UsageReport } from './admin.schemas';

@RequireScope('admin')
@Controller('admin/usage')
export class UsageController {
  constructor(private readonly usage: UsageService) {}

  @Get()
  @ApiRoute({
    tag: 'admin',
    summary: 'Usage',
    description:
      'Requests, tokens and errors of the generation routes over `[from, to)`, by model, key or UTC day. Every ' +
      'generation request that passed the key check leaves one record, answered or failed. 422 for an unknown ' +
      'query parameter, a date that is not ISO 8601, `from` after `to`, or an unknown `group_by`.',
    operationId: 'usage',
    query: UsageQueryParameters,
    responses: { 200: { description: 'The usage.', content: { 'application/json': { schema: UsageReport } } } },
    errors: adminErrors('Validation'),
  })
  async summary(@Query() query: unknown): Promise<UsageReport> {
    const { from, to, group_by: groupBy } = parseWith(UsageQuery, query);
    const rows = await this.usage.summary(from, to, groupBy);
    return { from: from.toISOString(), to: to.toISOString(), group_by: groupBy, rows };
  }
}
