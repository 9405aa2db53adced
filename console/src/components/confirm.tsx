/** A button that asks again in place before doing something that cannot be undone. */
import { useState } from 'preact/hooks';

interface Props {
  label: string;
  question: string;
  confirmLabel: string;
  onConfirm: () => Promise<void>;
}

export function ConfirmButton({ label, question, confirmLabel, onConfirm }: Props) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  if (!asking) {
    return (
      <button type="button" class="danger" onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  }
  const confirm = async (): Promise<void> => {
    setBusy(true);
    try {
      await onConfirm();
    } finally {
      setBusy(false);
      setAsking(false);
    }
  };
  return (
    <div class="confirm" role="group" aria-label={question}>
      <p>{question}</p>
      <button type="button" class="danger" disabled={busy} onClick={() => void confirm()}>
        {confirmLabel}
      </button>
      <button type="button" disabled={busy} onClick={() => setAsking(false)}>
        Cancel
      </button>
    </div>
  );
}
