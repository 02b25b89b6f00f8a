/** `npm run migrate`: the migrations alone, for CI and operators. */
import { readApiConfig } from '@switchyard/config';
import { migrate } from './migrate';

const config = readApiConfig(process.argv.slice(2), process.env);
migrate(config.databaseUrl, (line) => console.log(`migrate: ${line}`)).catch((err: unknown) => {
  console.error(`migrate: ${(err as Error).message}`);
  process.exit(1);
});
