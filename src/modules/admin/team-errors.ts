/** What the admin API says about ids it cannot use. */
import { AppError } from '../../contracts/app-error';

/** A uuid as PostgreSQL prints it: anything else names no key or team (and never reaches SQL). */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** 404 team_not_found; `param` when the id came in a request field (a key's team_id). */
export function teamNotFound(param: string | null = null): AppError {
  return new AppError('team_not_found', 'no team with this id', { param });
}
