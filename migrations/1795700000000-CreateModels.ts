import { MigrationInterface, QueryRunner } from 'typeorm';

/** The model registry. */
export class CreateModels1795700000000 implements MigrationInterface {
  name = 'CreateModels1795700000000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
      CREATE TABLE models (
        id varchar(128) PRIMARY KEY,
        path text NOT NULL,
        enabled boolean NOT NULL DEFAULT true,
        pinned boolean NOT NULL DEFAULT false,
        fallbacks jsonb NOT NULL DEFAULT '[]'::jsonb,
        max_input_tokens integer,
        max_total_tokens integer,
        default_parameters jsonb NOT NULL DEFAULT '{}'::jsonb,
        quantization varchar(32),
        memory_bytes bigint,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT models_id_format CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
        CONSTRAINT models_fallbacks_array CHECK (jsonb_typeof(fallbacks) = 'array'),
        CONSTRAINT models_limits CHECK (max_input_tokens IS NULL OR max_input_tokens > 0)
      )
    `);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP TABLE models');
  }
}
