/** Persistence shape of an API key (table api_keys, created by migrations/). */
import { Check, Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/** bigint columns arrive as strings from node-postgres; they always fit a JS number here. */
const bigintAsNumber = {
  to: (value: number | null | undefined) => value,
  from: (value: string | number | bigint | null) => (value === null ? null : Number(value)),
};

// Indexes and checks mirror the migration so `npm run migration:generate` sees no difference.
@Entity('api_keys')
@Index('api_keys_key_hash_idx', ['keyHash'], { unique: true })
@Index('api_keys_created_at_id_idx', ['createdAt', 'id'])
@Check('api_keys_name_check', '((char_length(name) >= 1) AND (char_length(name) <= 200))')
@Check('api_keys_rpm_limit_check', '(rpm_limit > 0)')
@Check('api_keys_tpm_limit_check', '(tpm_limit > 0)')
@Check('api_keys_monthly_quota_check', '(monthly_quota >= 0)')
@Check('api_keys_monthly_token_quota_check', '(monthly_token_quota >= 0)')
@Check('api_keys_quota_requests_used_check', '(quota_requests_used >= 0)')
@Check('api_keys_quota_tokens_used_check', '(quota_tokens_used >= 0)')
@Check('api_keys_max_concurrent_check', '(max_concurrent > 0)')
@Check('api_keys_priority_check', "(priority IN ('high', 'normal', 'low'))")
@Check('api_keys_weight_check', '((weight >= 1) AND (weight <= 100))')
export class ApiKeyEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column('text')
  name!: string;

  @Column('text', { name: 'key_prefix' })
  keyPrefix!: string;

  @Column('char', { name: 'key_hash', length: 64 })
  keyHash!: string;

  @Column('integer', { name: 'rpm_limit', nullable: true })
  rpmLimit!: number | null;

  @Column('integer', { name: 'tpm_limit', nullable: true })
  tpmLimit!: number | null;

  @Column('integer', { name: 'monthly_quota', nullable: true })
  monthlyQuota!: number | null;

  @Column('bigint', { name: 'monthly_token_quota', nullable: true, transformer: bigintAsNumber })
  monthlyTokenQuota!: number | null;

  @Column('text', { array: true, nullable: true })
  models!: string[] | null;

  @Column('boolean', { default: true })
  active!: boolean;

  @Column('timestamptz', { name: 'created_at' })
  createdAt!: Date;

  @Column('timestamptz', { name: 'updated_at' })
  updatedAt!: Date;

  @Column('timestamptz', { name: 'expires_at', nullable: true })
  expiresAt!: Date | null;

  @Column('timestamptz', { name: 'revoked_at', nullable: true })
  revokedAt!: Date | null;

  @Column('integer', { name: 'max_concurrent', nullable: true })
  maxConcurrent!: number | null;

  @Column('text', { default: 'normal' })
  priority!: string;

  @Column('integer', { default: 1 })
  weight!: number;

  // The quota period and its counters are written only by QuotaService's conditional
  // statements (and set once on insert): an entity save elsewhere (admin changes) must never
  // write back a stale copy over concurrent reservations.
  @Column({ type: 'timestamptz', name: 'quota_period_start', update: false })
  quotaPeriodStart!: Date;

  @Column({ type: 'timestamptz', name: 'quota_reset_at', update: false })
  quotaResetAt!: Date;

  @Column({ type: 'integer', name: 'quota_requests_used', default: 0, update: false })
  quotaRequestsUsed!: number;

  @Column({ type: 'bigint', name: 'quota_tokens_used', default: 0, update: false, transformer: bigintAsNumber })
  quotaTokensUsed!: number;
}
