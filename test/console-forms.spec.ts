/**
 * The console's form rules for the team and budget fields (console/src/fields.ts), without a
 * browser: amounts are checked against what the API accepts (at most 15 decimals, up to 10^12)
 * before any request, read back without an exponent, and a key's team choice becomes `team_id`.
 */
import { FieldError, formValues, requestBody } from '../console/src/fields';
import { formatAmount, plainDecimal } from '../console/src/format';
import { KEY_FIELDS } from '../console/src/key-fields';
import { TEAM_FIELDS } from '../console/src/team-fields';

const budget = TEAM_FIELDS.find((field) => field.name === 'monthly_budget')!;
const teamFields = TEAM_FIELDS;
const keyFields = KEY_FIELDS.filter((field) => ['name', 'team_id', 'monthly_budget'].includes(field.name));

function bodyError(values: Record<string, string>): string | null {
  try {
    requestBody([budget], values, null);
    return null;
  } catch (error) {
    return error instanceof FieldError ? `${error.field}: ${error.message}` : String(error);
  }
}

describe('console forms: budgets and teams', () => {
  it('takes an amount with up to 15 decimals and up to 10^12, and nothing else', () => {
    expect(requestBody([budget], { monthly_budget: '12.5' }, null)).toEqual({ monthly_budget: 12.5 });
    expect(requestBody([budget], { monthly_budget: ' 0.000000000000001 ' }, null)).toEqual({
      monthly_budget: 1e-15,
    });
    expect(requestBody([budget], { monthly_budget: '1000000000000' }, null)).toEqual({ monthly_budget: 1e12 });
    // Empty on create: no budget, so the field is left out.
    expect(requestBody([budget], { monthly_budget: '' }, null)).toEqual({});
    for (const wrong of ['-1', '1e3', '1,5', '.5', '0.0000000000000001', 'ten']) {
      expect(bodyError({ monthly_budget: wrong })).toMatch(/^monthly_budget: an amount like 12\.50/);
    }
    expect(bodyError({ monthly_budget: '1000000000000.01' })).toBe('monthly_budget: at most 1000000000000');
  });

  it('shows a stored budget as plain digits and sends only what changed; emptied, it sends null', () => {
    const team = { name: 'search', rpm_limit: null, monthly_budget: 1e-7, max_concurrent: 3 };
    const values = formValues(teamFields, team);
    expect(values.monthly_budget).toBe('0.0000001');
    expect(requestBody(teamFields, values, team)).toEqual({});
    expect(requestBody(teamFields, { ...values, monthly_budget: '250' }, team)).toEqual({ monthly_budget: 250 });
    expect(requestBody(teamFields, { ...values, monthly_budget: '' }, team)).toEqual({ monthly_budget: null });
  });

  it('turns the team choice into team_id: a team id, or null to leave the team', () => {
    const key = { name: 'k', team_id: 'a6f0c9a2-1111-4222-8333-944445555666', monthly_budget: null };
    const values = formValues(keyFields, key);
    expect(values.team_id).toBe(key.team_id);
    expect(requestBody(keyFields, { ...values, team_id: '' }, key)).toEqual({ team_id: null });
    // On create, no team is no field at all.
    expect(requestBody(keyFields, { name: 'new', team_id: '', monthly_budget: '' }, null)).toEqual({ name: 'new' });
    expect(requestBody(keyFields, { name: 'new', team_id: key.team_id, monthly_budget: '0.25' }, null)).toEqual({
      name: 'new',
      team_id: key.team_id,
      monthly_budget: 0.25,
    });
  });

  it('shows spend of a cheap model without rounding it to zero', () => {
    expect(formatAmount(0)).toBe('0');
    expect(formatAmount(0.0000123456)).toBe('0.00001235');
    expect(formatAmount(12.345678)).toBe('12.3457');
    expect(formatAmount(1234.5)).toBe('1,234.5');
    expect(plainDecimal(1e12)).toBe('1000000000000');
  });
});
