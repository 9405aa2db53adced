/**
 * Hash routes (#/keys/<id>): the server serves one page, and nothing secret is ever part of a
 * route — the token stays in sessionStorage, a new key's plaintext in memory.
 */
import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { page: 'overview' }
  | { page: 'keys' }
  | { page: 'new-key' }
  | { page: 'key'; id: string }
  | { page: 'teams' }
  | { page: 'new-team' }
  | { page: 'team'; id: string }
  | { page: 'models' };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/');
  if (parts[0] === 'keys' && parts[1] === 'new') return { page: 'new-key' };
  if (parts[0] === 'keys' && parts[1] && UUID.test(parts[1])) return { page: 'key', id: parts[1] };
  if (parts[0] === 'keys') return { page: 'keys' };
  if (parts[0] === 'teams' && parts[1] === 'new') return { page: 'new-team' };
  if (parts[0] === 'teams' && parts[1] && UUID.test(parts[1])) return { page: 'team', id: parts[1] };
  if (parts[0] === 'teams') return { page: 'teams' };
  if (parts[0] === 'models') return { page: 'models' };
  return { page: 'overview' };
}

export function href(route: Route): string {
  switch (route.page) {
    case 'overview':
      return '#/';
    case 'keys':
      return '#/keys';
    case 'new-key':
      return '#/keys/new';
    case 'key':
      return `#/keys/${route.id}`;
    case 'teams':
      return '#/teams';
    case 'new-team':
      return '#/teams/new';
    case 'team':
      return `#/teams/${route.id}`;
    case 'models':
      return '#/models';
  }
}

export function navigate(route: Route): void {
  window.location.hash = href(route);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const onChange = (): void => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
