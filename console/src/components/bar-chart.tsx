/**
 * A stacked bar chart as plain SVG: one bar per day, one colour per series (model). Hand-written
 * rather than a chart library: it is the only chart shape the console needs, it costs no
 * dependency, and it sets no inline styles (the page's CSP forbids them). Each bar segment
 * carries a <title> (the tooltip) and data-* attributes; the numbers are also in a table
 * under the chart, for screen readers and copying.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { formatNumber } from '../format';
import type { Series } from '../usage';

const HEIGHT = 180;
const PAD = { top: 10, right: 6, bottom: 24, left: 44 };
/** Until the figure is measured. */
const DEFAULT_WIDTH = 640;
export const PALETTE = ['#2563eb', '#ea580c', '#16a34a', '#9333ea', '#dc2626', '#0891b2', '#ca8a04', '#db2777'];

export function colour(index: number): string {
  return PALETTE[index % PALETTE.length];
}

/** A round axis maximum at or above `max` (1, 2 or 5 times a power of ten). */
function niceMax(max: number): number {
  if (max <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  const step = [1, 2, 5, 10].find((m) => m * power >= max) ?? 10;
  return step * power;
}

interface Props {
  title: string;
  /** What one unit is, e.g. "requests" or "USD". */
  unit: string;
  /** What the chart says when it has nothing to draw. */
  empty?: string;
  days: string[];
  series: Series[];
  id: string;
  /** How a value reads (default: a count). */
  format?: (value: number) => string;
  /** Counts are whole numbers: no tick at 2.5. Spend is not. */
  whole?: boolean;
}

/**
 * The figure's width in CSS pixels, followed as it changes: the SVG is drawn at that width (one
 * unit a pixel), so its text keeps its size from a phone to a wide screen.
 */
function useWidth(): [ref: { current: HTMLDivElement | null }, width: number] {
  const ref = useRef<HTMLDivElement | null>(null);
  const [width, setWidth] = useState(DEFAULT_WIDTH);
  useEffect(() => {
    const element = ref.current;
    if (!element) return;
    const measure = (): void => setWidth(Math.max(200, Math.floor(element.clientWidth)));
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(element);
    return () => observer.disconnect();
  }, []);
  return [ref, width];
}

export function BarChart({ title, unit, empty, days, series, id, format = formatNumber, whole = true }: Props) {
  const [ref, width] = useWidth();
  const dayTotals = days.map((_, i) => series.reduce((sum, s) => sum + s.values[i], 0));
  const top = niceMax(Math.max(0, ...dayTotals));
  const ticks = [0, top / 2, top].filter((tick) => !whole || Number.isInteger(tick));
  // Room for the longest tick label (small amounts have many digits), about 7 px a character.
  const left = Math.max(PAD.left, 10 + 7 * Math.max(...ticks.map((tick) => format(tick).length)));
  const plotWidth = width - left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const slot = plotWidth / Math.max(days.length, 1);
  const barWidth = Math.max(2, slot * 0.7);
  const y = (value: number): number => PAD.top + plotHeight - (value / top) * plotHeight;
  const labelDays = new Set([0, Math.floor((days.length - 1) / 2), days.length - 1]);
  const total = dayTotals.reduce((a, b) => a + b, 0);

  return (
    <figure class="chart" data-chart={id}>
      <figcaption>
        <span class="chart-title">{title}</span>
        <span class="chart-total">
          {format(total)} {unit}
        </span>
      </figcaption>
      <div class="plot" ref={ref}>
        {total === 0 ? (
          <p class="muted chart-empty">{empty ?? `No ${unit} in these days.`}</p>
        ) : (
          <svg
            width={width}
            height={HEIGHT}
            viewBox={`0 0 ${width} ${HEIGHT}`}
            role="img"
            aria-label={`${title}: ${format(total)} ${unit}`}
          >
            {ticks.map((tick) => (
              <g key={tick} class="tick">
                <line x1={left} x2={width - PAD.right} y1={y(tick)} y2={y(tick)} />
                <text x={left - 6} y={y(tick) + 4} text-anchor="end">
                  {format(tick)}
                </text>
              </g>
            ))}
            {days.map((day, i) => {
              let base = 0;
              return (
                <g key={day}>
                  {series.map((s, k) => {
                    const value = s.values[i];
                    if (value === 0) return null;
                    const y0 = y(base);
                    base += value;
                    return (
                      <rect
                        key={s.name}
                        class="bar"
                        x={left + i * slot + (slot - barWidth) / 2}
                        y={y(base)}
                        width={barWidth}
                        height={Math.max(1, y0 - y(base))}
                        fill={colour(k)}
                        data-date={day}
                        data-model={s.name}
                        data-value={value}
                      >
                        <title>{`${day} · ${s.name}: ${`${format(value)} ${unit}`}`}</title>
                      </rect>
                    );
                  })}
                  {labelDays.has(i) ? (
                    <text
                      class="day-label"
                      x={i === 0 ? left : i === days.length - 1 ? width - PAD.right : left + i * slot + slot / 2}
                      y={HEIGHT - 6}
                      text-anchor={i === 0 ? 'start' : i === days.length - 1 ? 'end' : 'middle'}
                    >
                      {day.slice(5)}
                    </text>
                  ) : null}
                </g>
              );
            })}
          </svg>
        )}
      </div>
      {total > 0 ? (
        <ul class="legend">
          {series.map((s, k) => (
            <li key={s.name}>
              <svg class="swatch" viewBox="0 0 10 10" aria-hidden="true">
                <rect width="10" height="10" rx="2" fill={colour(k)} />
              </svg>
              {s.name}
            </li>
          ))}
        </ul>
      ) : null}
      {total > 0 ? (
        <details class="chart-data">
          <summary>Numbers</summary>
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">day</th>
                  {series.map((s) => (
                    <th scope="col" key={s.name}>
                      {s.name}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {days.map((day, i) =>
                  dayTotals[i] === 0 ? null : (
                    <tr key={day}>
                      <td>{day}</td>
                      {series.map((s) => (
                        <td class="num" key={s.name}>
                          {format(s.values[i])}
                        </td>
                      ))}
                    </tr>
                  ),
                )}
              </tbody>
            </table>
          </div>
        </details>
      ) : null}
    </figure>
  );
}
