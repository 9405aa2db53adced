/**
 * The admin token lives in sessionStorage only: it survives a reload of this tab, is gone when
 * the tab closes, and is never put in a URL, a cookie or localStorage.
 */
const TOKEN_KEY = 'llm-server.admin-token';

export function storedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function storeToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearSession(): void {
  sessionStorage.clear();
}
