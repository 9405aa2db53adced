import type { Priority } from './scheduling';

/** What the guard attaches to an authenticated request: the key's settings, never its secret. */
export interface AuthenticatedKey {
  id: string;
  name: string;
  rpmLimit: number | null;
  tpmLimit: number | null;
  monthlyQuota: number | null;
  monthlyTokenQuota: number | null;
  /** null: every model. */
  models: string[] | null;
  active: boolean;
  expiresAt: Date | null;
  revokedAt: Date | null;
  /** Generations in flight at once; null: unlimited. */
  maxConcurrent: number | null;
  priority: Priority;
  /** Share within its priority, 1..100. */
  weight: number;
}
