/**
 * Nest's console logger without its start-up chatter (every module and route it wires, at `log` level): the
 * platform's own lines and every warning and error stay.
 */
import { ConsoleLogger } from '@nestjs/common';

const CHATTER = new Set(['NestFactory', 'InstanceLoader', 'RoutesResolver', 'RouterExplorer', 'NestApplication']);

export class QuietLogger extends ConsoleLogger {
  override log(message: unknown, ...rest: unknown[]): void {
    const context = rest.at(-1);
    if (typeof context === 'string' && CHATTER.has(context)) return;
    super.log(message, ...(rest as [string]));
  }
}
