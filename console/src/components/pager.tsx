/**
 * Cursor paging of an admin list (keys, teams): the cursors of the pages seen so far, so Previous
 * goes back without the API having to page backwards.
 */
import { useState } from 'preact/hooks';

/** The cursor of the page to show (null: the first) and the pager's state. */
export function useCursors(): {
  cursor: string | null;
  cursors: (string | null)[];
  setCursors: (c: (string | null)[]) => void;
} {
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  return { cursor: cursors[cursors.length - 1], cursors, setCursors };
}

export function Pager({
  cursors,
  setCursors,
  nextCursor,
}: {
  cursors: (string | null)[];
  setCursors: (c: (string | null)[]) => void;
  nextCursor: string | null | undefined;
}) {
  return (
    <nav class="pager" aria-label="Pages">
      <button type="button" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
        Previous
      </button>
      <span class="muted">Page {cursors.length}</span>
      <button type="button" disabled={!nextCursor} onClick={() => nextCursor && setCursors([...cursors, nextCursor])}>
        Next
      </button>
    </nav>
  );
}
