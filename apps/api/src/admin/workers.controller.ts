/** `GET /admin/workers`: the live workers, their models (loading or loaded) and their memory. */
import { Controller, Get } from '@nestjs/common';
import { z } from 'zod';
import { RequireScope } from '../auth/auth.guard';
import { ApiRoute } from '../docs/api-route';
import { WorkerDirectory } from '../redis/worker-directory.service';
import { adminErrors, Worker } from './admin.schemas';

@RequireScope('admin')
@Controller('admin/workers')
export class WorkersController {
  constructor(private readonly workers: WorkerDirectory) {}

  @Get()
  @ApiRoute({
    tag: 'admin',
    summary: 'List the workers',
    description: 'The live workers (those whose heartbeat has not expired), by id, with their models and memory.',
    operationId: 'listWorkers',
    responses: { 200: { description: 'The workers.', content: { 'application/json': { schema: z.array(Worker) } } } },
    errors: adminErrors(),
  })
  async list(): Promise<Worker[]> {
    const beats = await this.workers.live();
    return beats
      .map((b) => ({
        id: b.id,
        host: b.host,
        pid: b.pid,
        started_at: new Date(b.startedAt).toISOString(),
        heartbeat_at: new Date(b.at).toISOString(),
        draining: b.draining,
        memory: {
          used_bytes: b.memory.used,
          budget_bytes: b.memory.budget,
          parked_bytes: b.memory.parked ?? 0,
          host_budget_bytes: b.memory.hostBudget ?? 0,
        },
        event_loop_max_ms: b.eventLoop?.worstMs ?? null,
        models: b.models.map((m) => ({
          id: m.id,
          state: m.state,
          tier: m.state === 'parked' ? ('parked' as const) : ('resident' as const),
          bytes: m.bytes,
          pinned: m.pinned,
          active: m.running,
          waiting: m.waiting + m.queued,
          oldest_queued_ms: m.oldestQueuedMs,
          dtype: m.dtype ?? null,
          quantize: m.quantize ?? null,
          attention: m.attention ?? null,
          kv_dtype: m.kvDtype ?? null,
        })),
      }))
      .sort((a, b) => a.id.localeCompare(b.id));
  }
}
