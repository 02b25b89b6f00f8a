/**
 * This process's run of its worker id: a worker restarted by the launcher keeps its id, so the jobs a process
 * takes carry both (`takerName`), and crash recovery can tell a dead predecessor's jobs from its successor's.
 */
import { randomUUID } from 'node:crypto';

export const INCARNATION = randomUUID().slice(0, 8);

/** The name BullMQ records on each job this process takes (`pb`). */
export function takerName(workerId: string): string {
  return `${workerId}/${INCARNATION}`;
}
