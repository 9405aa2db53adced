import type { Priority } from './scheduling';

/** The limits keys and teams both carry (null: none). */
export interface OwnerLimits {
  id: string;
  name: string;
  rpmLimit: number | null;
  tpmLimit: number | null;
  monthlyQuota: number | null;
  monthlyTokenQuota: number | null;
  /** In CURRENCY, as the exact decimal the database holds; null: no budget. */
  monthlyBudget: string | null;
  /** Generations in flight at once; null: unlimited. */
  maxConcurrent: number | null;
}

/** The limits of a team (API.md "Teams, prices and budgets"); its keys pass them as well as their own. */
export type TeamLimits = OwnerLimits;

/** What the guard attaches to an authenticated request: the key's settings, never its secret. */
export interface AuthenticatedKey extends OwnerLimits {
  /** null: every model. */
  models: string[] | null;
  active: boolean;
  expiresAt: Date | null;
  revokedAt: Date | null;
  priority: Priority;
  /** Share within its priority, 1..100. */
  weight: number;
  /** The team the key belongs to, with its limits; null: none. */
  team: TeamLimits | null;
}

/** Whose limit refused a request (the error's `param`). */
export type LimitOwnerKind = 'key' | 'team';
