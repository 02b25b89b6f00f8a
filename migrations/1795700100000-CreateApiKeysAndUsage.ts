import { MigrationInterface, QueryRunner } from 'typeorm';

/** API keys (sha256 hashes only) and one usage record per request. */
export class CreateApiKeysAndUsage1795700100000 implements MigrationInterface {
  name = 'CreateApiKeysAndUsage1795700100000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
      CREATE TABLE api_keys (
        id uuid PRIMARY KEY,
        name varchar(200) NOT NULL,
        key_hash char(64) NOT NULL UNIQUE,
        prefix varchar(16) NOT NULL,
        scopes text[] NOT NULL DEFAULT '{inference}',
        allowed_models text[],
        rpm_limit integer CHECK (rpm_limit IS NULL OR rpm_limit > 0),
        tpm_limit integer CHECK (tpm_limit IS NULL OR tpm_limit > 0),
        expires_at timestamptz,
        revoked_at timestamptz,
        last_used_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT api_keys_scopes CHECK (scopes <@ ARRAY['inference', 'admin']::text[])
      )
    `);
    await runner.query(`
      CREATE TABLE usage_records (
        id bigserial PRIMARY KEY,
        request_id varchar(64) NOT NULL UNIQUE,
        key_id uuid,
        requested_model varchar(128),
        served_model varchar(128),
        route varchar(64) NOT NULL,
        prompt_tokens integer NOT NULL DEFAULT 0,
        generated_tokens integer NOT NULL DEFAULT 0,
        finish_reason varchar(32),
        status integer NOT NULL,
        error_type varchar(64),
        queue_ms integer,
        ttft_ms integer,
        total_ms integer NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )
    `);
    await runner.query('CREATE INDEX usage_records_created_at ON usage_records (created_at)');
    await runner.query('CREATE INDEX usage_records_key_created_at ON usage_records (key_id, created_at)');
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP TABLE usage_records');
    await runner.query('DROP TABLE api_keys');
  }
}
