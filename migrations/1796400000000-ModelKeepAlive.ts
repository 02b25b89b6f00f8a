import { MigrationInterface, QueryRunner } from 'typeorm';

/** A model's own keep-alive (Ollama's semantics: -1 holds it through memory pressure, 0 unloads it once idle). */
export class ModelKeepAlive1796400000000 implements MigrationInterface {
  name = 'ModelKeepAlive1796400000000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(
      'ALTER TABLE models ADD COLUMN keep_alive_ms integer CHECK (keep_alive_ms IS NULL OR keep_alive_ms >= -1)',
    );
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('ALTER TABLE models DROP COLUMN keep_alive_ms');
  }
}
