/** The teams a key's form offers: the first page of GET /admin/teams (the API's largest). */
import { api } from './api';
import { useLoad } from './hooks';
import type { TeamChoice, TeamPage } from './types';

export function useTeamChoices(): TeamChoice[] {
  const teams = useLoad(() => api<TeamPage>('GET', '/admin/teams?limit=100'), []);
  return teams.data?.data.map(({ id, name }) => ({ id, name })) ?? [];
}
