/** The `api_keys` table: a key is stored only as its sha256 hash, with a short prefix for display. */
import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

export type Scope = 'inference' | 'admin';
export const SCOPES: readonly Scope[] = ['inference', 'admin'];

@Entity({ name: 'api_keys' })
export class ApiKeyEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ type: 'varchar', length: 200 })
  name!: string;

  @Column({ name: 'key_hash', type: 'char', length: 64 })
  keyHash!: string;

  /** The key's first characters (`sy-ab12cd`), to tell keys apart in listings. */
  @Column({ type: 'varchar', length: 16 })
  prefix!: string;

  @Column({ type: 'text', array: true })
  scopes!: Scope[];

  /** Model ids the key may use; null means all. */
  @Column({ name: 'allowed_models', type: 'text', array: true, nullable: true })
  allowedModels!: string[] | null;

  @Column({ name: 'rpm_limit', type: 'integer', nullable: true })
  rpmLimit!: number | null;

  @Column({ name: 'tpm_limit', type: 'integer', nullable: true })
  tpmLimit!: number | null;

  @Column({ name: 'expires_at', type: 'timestamptz', nullable: true })
  expiresAt!: Date | null;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt!: Date | null;

  @Column({ name: 'last_used_at', type: 'timestamptz', nullable: true })
  lastUsedAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
