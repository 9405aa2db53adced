/** The editable fields of a key (API.md "Admin API"). */
import type { FormField } from './fields';

export const INT32_MAX = 2_147_483_647;

/** The monthly quotas keys and teams both have. */
export const MONTHLY_QUOTA_FIELDS: FormField[] = [
  {
    name: 'monthly_quota',
    label: 'Requests per month',
    kind: 'limit',
    min: 0,
    max: INT32_MAX,
    help: 'empty: unlimited; the month is the calendar month in UTC',
  },
  {
    name: 'monthly_token_quota',
    label: 'Tokens per month',
    kind: 'limit',
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
    help: 'empty: unlimited',
  },
];

export const KEY_FIELDS: FormField[] = [
  { name: 'name', label: 'Name', kind: 'text', help: '1 to 200 characters' },
  {
    name: 'rpm_limit',
    label: 'Requests per minute',
    kind: 'limit',
    min: 1,
    max: INT32_MAX,
    help: 'empty: the server default (DEFAULT_RPM)',
  },
  { name: 'tpm_limit', label: 'Tokens per minute', kind: 'limit', min: 1, max: INT32_MAX, help: 'empty: unlimited' },
  ...MONTHLY_QUOTA_FIELDS,
  {
    name: 'monthly_budget',
    label: 'Budget per month',
    kind: 'money',
    help: 'empty: no budget of its own (its team’s still applies)',
  },
  { name: 'team_id', label: 'Team', kind: 'team', help: 'its team’s limits apply too' },
  {
    name: 'max_concurrent',
    label: 'Concurrent generations',
    kind: 'limit',
    min: 1,
    max: INT32_MAX,
    help: 'empty: unlimited',
    optional: true,
  },
  {
    name: 'priority',
    label: 'Priority',
    kind: 'choice',
    choices: ['high', 'normal', 'low'],
    help: 'order of service when a model is busy',
    optional: true,
  },
  {
    name: 'weight',
    label: 'Weight',
    kind: 'integer',
    min: 1,
    max: 100,
    help: 'share within its priority, 1 to 100',
    optional: true,
    initial: '1',
  },
  { name: 'models', label: 'Models', kind: 'models', help: 'the models this key may use' },
  { name: 'expires_at', label: 'Expires', kind: 'instant', help: 'empty: never; in UTC' },
  {
    name: 'active',
    label: 'Active',
    kind: 'flag',
    help: 'an inactive key is refused until it is activated again',
    editOnly: true,
  },
];
