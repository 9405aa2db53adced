/**
 * The editable fields of a team (API.md "Teams, prices and budgets"): its own limits, which
 * every request of its keys must pass beside the key's. Empty means no limit of the team's.
 */
import type { FormField } from './fields';
import { INT32_MAX, MONTHLY_QUOTA_FIELDS } from './key-fields';

export const TEAM_FIELDS: FormField[] = [
  { name: 'name', label: 'Name', kind: 'text', help: '1 to 200 characters' },
  { name: 'rpm_limit', label: 'Requests per minute', kind: 'limit', min: 1, max: INT32_MAX, help: 'empty: unlimited' },
  { name: 'tpm_limit', label: 'Tokens per minute', kind: 'limit', min: 1, max: INT32_MAX, help: 'empty: unlimited' },
  ...MONTHLY_QUOTA_FIELDS,
  {
    name: 'monthly_budget',
    label: 'Budget per month',
    kind: 'money',
    help: 'for all its keys together; empty: no budget',
  },
  {
    name: 'max_concurrent',
    label: 'Concurrent generations',
    kind: 'limit',
    min: 1,
    max: INT32_MAX,
    help: 'empty: unlimited',
  },
];
