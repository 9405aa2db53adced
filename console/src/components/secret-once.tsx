/**
 * A new key's plaintext, shown once after create or rotate. It is held in memory only (never in
 * the URL or storage) and gone once dismissed, on sign-out, or on reload.
 */
import { useRef, useState } from 'preact/hooks';

export function SecretOnce({ secret, onDismiss }: { secret: string; onDismiss: () => void }) {
  const [copy, setCopy] = useState<'idle' | 'copied' | 'failed'>('idle');
  const field = useRef<HTMLInputElement>(null);

  const copyKey = async (): Promise<void> => {
    try {
      // The Clipboard API needs a secure context (HTTPS or localhost); elsewhere select the text.
      if (!navigator.clipboard) throw new Error('no clipboard');
      await navigator.clipboard.writeText(secret);
      setCopy('copied');
    } catch {
      field.current?.select();
      setCopy('failed');
    }
  };

  return (
    <section class="secret" aria-labelledby="secret-title">
      <h2 id="secret-title">Copy the new key now</h2>
      <p class="warning" role="note">
        This is the only time the key is shown. The server keeps only a hash of it: if it is lost, rotate the key to get
        a new one.
      </p>
      <div class="secret-row">
        <input
          ref={field}
          class="secret-value"
          type="text"
          readOnly
          value={secret}
          aria-label="New API key"
          spellcheck={false}
          autocomplete="off"
          onFocus={(event) => event.currentTarget.select()}
        />
        <button type="button" class="primary" onClick={() => void copyKey()}>
          Copy
        </button>
      </div>
      <p class="muted" aria-live="polite">
        {copy === 'copied' ? 'Copied to the clipboard.' : null}
        {copy === 'failed' ? 'Could not copy: the key is selected, copy it by hand.' : null}
      </p>
      <button type="button" onClick={onDismiss}>
        I have stored it
      </button>
    </section>
  );
}
