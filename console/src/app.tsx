/**
 * The console shell: sign-in gate, navigation and the page of the current route. What it keeps
 * in memory besides the session token: a new key's plaintext (until dismissed), the model
 * names for the key form and the server's currency for spend.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, UNAUTHORIZED_EVENT } from './api';
import { KeyDetail } from './pages/key-detail';
import { Keys } from './pages/keys';
import { Models } from './pages/models';
import { NewKey } from './pages/new-key';
import { Overview } from './pages/overview';
import { NewTeam } from './pages/new-team';
import { SignIn } from './pages/sign-in';
import { TeamDetail } from './pages/team-detail';
import { Teams } from './pages/teams';
import { href, navigate, type Route, useRoute } from './router';
import { clearSession, storedToken } from './session';
import type { CreatedKey, ModelList } from './types';

const NAV: { route: Route; label: string }[] = [
  { route: { page: 'overview' }, label: 'Overview' },
  { route: { page: 'keys' }, label: 'Keys' },
  { route: { page: 'teams' }, label: 'Teams' },
  { route: { page: 'models' }, label: 'Models' },
];

function section(route: Route): Route['page'] {
  if (route.page === 'key' || route.page === 'new-key') return 'keys';
  if (route.page === 'team' || route.page === 'new-team') return 'teams';
  return route.page;
}

/** Until the server names it (GET /admin/models `currency`); CONFIG.md's default. */
const DEFAULT_CURRENCY = 'USD';

export function App() {
  const route = useRoute();
  const [signedIn, setSignedIn] = useState(() => storedToken() !== null);
  const [notice, setNotice] = useState<unknown>(null);
  const [secret, setSecret] = useState<{ id: string; key: string } | null>(null);
  const [modelNames, setModelNames] = useState<string[]>([]);
  const [currency, setCurrency] = useState(DEFAULT_CURRENCY);

  const signOut = (reason: unknown = null): void => {
    clearSession();
    setSecret(null);
    setModelNames([]);
    setNotice(reason);
    setSignedIn(false);
  };

  useEffect(() => {
    const onUnauthorized = (event: Event): void => signOut((event as CustomEvent).detail);
    window.addEventListener(UNAUTHORIZED_EVENT, onUnauthorized);
    return () => window.removeEventListener(UNAUTHORIZED_EVENT, onUnauthorized);
  }, []);

  useEffect(() => {
    if (!signedIn) return;
    api<ModelList>('GET', '/admin/models').then(
      (list) => {
        setModelNames(list.data.map((model) => model.name));
        setCurrency(list.currency ?? DEFAULT_CURRENCY);
      },
      () => setModelNames([]),
    );
  }, [signedIn]);

  if (!signedIn) {
    return (
      <SignIn
        notice={notice}
        onSignedIn={() => {
          setNotice(null);
          setSignedIn(true);
        }}
      />
    );
  }

  const onSecret = (created: CreatedKey | null): void =>
    setSecret(created ? { id: created.id, key: created.key } : null);
  let page;
  switch (route.page) {
    case 'overview':
      page = <Overview currency={currency} />;
      break;
    case 'keys':
      page = <Keys />;
      break;
    case 'new-key':
      page = (
        <NewKey
          modelNames={modelNames}
          currency={currency}
          onCreated={(created) => {
            onSecret(created);
            navigate({ page: 'key', id: created.id });
          }}
        />
      );
      break;
    case 'key':
      page = (
        <KeyDetail
          key={route.id}
          id={route.id}
          modelNames={modelNames}
          currency={currency}
          secret={secret?.id === route.id ? secret.key : null}
          onSecret={onSecret}
        />
      );
      break;
    case 'teams':
      page = <Teams currency={currency} />;
      break;
    case 'new-team':
      page = <NewTeam currency={currency} onCreated={(team) => navigate({ page: 'team', id: team.id })} />;
      break;
    case 'team':
      page = <TeamDetail key={route.id} id={route.id} currency={currency} />;
      break;
    case 'models':
      page = <Models />;
      break;
  }

  return (
    <>
      <header class="top">
        <a class="brand" href={href({ page: 'overview' })}>
          LLM Server
        </a>
        <nav aria-label="Console">
          {NAV.map(({ route: target, label }) => (
            <a key={label} href={href(target)} aria-current={section(route) === target.page ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <button type="button" class="sign-out" onClick={() => signOut()}>
          Sign out
        </button>
      </header>
      {page}
    </>
  );
}
