/**
 * A limit's owner, a key or its team (API.md "Teams, prices and budgets"): the table that holds
 * its quota and budget counters, and the markers (usage_writes ids) of its reservations. A key's
 * markers are `reserve:<rid>` / `release:<rid>` as before teams existed, so journals written by an
 * older version replay unchanged; a team's carry `team:` before the id.
 */
import type { LimitOwnerKind } from '../../contracts/authenticated-key';

export type OwnerTable = 'api_keys' | 'teams';

export function ownerTable(owner: LimitOwnerKind): OwnerTable {
  return owner === 'key' ? 'api_keys' : 'teams';
}

export function reserveMarker(owner: LimitOwnerKind, rid: string): string {
  return owner === 'key' ? `reserve:${rid}` : `reserve:team:${rid}`;
}

export function releaseMarker(owner: LimitOwnerKind, rid: string): string {
  return owner === 'key' ? `release:${rid}` : `release:team:${rid}`;
}
