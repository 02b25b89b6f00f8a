/**
 * The `models` table: the registry of what the platform can serve. The API resolves a model id here and sends
 * the spec in its load commands; workers never read it. The schema changes only through migrations.
 */
import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/** Postgres returns bigint as a string; the registry's sizes fit a double exactly. */
const bigintAsNumber = {
  to: (value: number | null) => value,
  from: (value: string | null) => (value === null ? null : Number(value)),
};

@Entity({ name: 'models' })
export class ModelEntity {
  @PrimaryColumn({ type: 'varchar', length: 128 })
  id!: string;

  /** An absolute directory holding an Optimum-style ONNX decoder export. */
  @Column({ type: 'text' })
  path!: string;

  @Column({ type: 'boolean', default: true })
  enabled!: boolean;

  @Column({ type: 'boolean', default: false })
  pinned!: boolean;

  /** Model ids to try, in order, when this one cannot serve. */
  @Column({ type: 'jsonb', default: () => "'[]'::jsonb" })
  fallbacks!: string[];

  @Column({ name: 'max_input_tokens', type: 'integer', nullable: true })
  maxInputTokens!: number | null;

  @Column({ name: 'max_total_tokens', type: 'integer', nullable: true })
  maxTotalTokens!: number | null;

  /** TGI `parameters` applied when a request leaves them out. */
  @Column({ name: 'default_parameters', type: 'jsonb', default: () => "'{}'::jsonb" })
  defaultParameters!: Record<string, unknown>;

  @Column({ type: 'varchar', length: 32, nullable: true })
  quantization!: string | null;

  /** Idle time before workers park or unload it, in milliseconds (-1: never, 0: once idle); null: the workers'. */
  @Column({ name: 'keep_alive_ms', type: 'integer', nullable: true })
  keepAliveMs!: number | null;

  /** Weights plus KV reservation, as measured when the model was registered. */
  @Column({ name: 'memory_bytes', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  memoryBytes!: number | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
