/**
 * How much of a monthly allowance is used: requests, tokens or spend of a key or a team. The
 * meter turns to its warning colour from 80 %, where the alert rules warn about budgets too.
 */
import { formatNumber } from '../format';

interface Props {
  id: string;
  label: string;
  used: number;
  /** null: no quota (only the figure is shown). */
  quota: number | null;
  /** How an amount reads (default: a count). */
  format?: (value: number) => string;
  /** Said instead of the quota when there is none. */
  none?: string;
  /** Said after the figures, e.g. what is held by requests in flight. */
  note?: string | null;
}

export function QuotaMeter({ id, label, used, quota, format = formatNumber, none = '(no quota)', note = null }: Props) {
  return (
    <div class="quota" data-quota={id}>
      <div class="quota-line">
        <span>{label}</span>
        <span class="quota-figures">
          {format(used)} {quota === null ? none : `of ${format(quota)}`}
        </span>
      </div>
      {quota !== null ? (
        <meter
          min={0}
          max={quota > 0 ? quota : 1}
          value={used}
          high={quota * 0.8}
          optimum={0}
          aria-label={`${label}: ${format(used)} of ${format(quota)}`}
        />
      ) : null}
      {note ? <small class="muted quota-note">{note}</small> : null}
    </div>
  );
}
