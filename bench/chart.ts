/**
 * The chart of bench/gateway.ts as a standalone SVG: latency at 1 connection (mean and p99,
 * direct vs through the gateway) and throughput at 32 connections (direct, miss, hit, hot key),
 * per mode. Plain SVG so the README can show it without any tool.
 */

interface Load {
  rps: number;
  mean_ms: number;
  p99_ms: number;
}

interface Mode {
  direct_1: Load;
  miss_1: Load;
  direct_32: Load;
  miss_32: Load;
  hit_32: Load;
  hot_key_quota_32: Load;
}

const COLORS = ['#7f8c8d', '#2e86de', '#27ae60', '#e67e22'];
const escape = (text: string) => text.replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]!);

export interface Group {
  label: string;
  bars: { label: string; value: number }[];
}

/** One panel of grouped horizontal bars. */
export function panel(
  title: string,
  unit: string,
  groups: Group[],
  x: number,
  y: number,
  width: number,
): { svg: string; height: number } {
  const max = Math.max(1, ...groups.flatMap((g) => g.bars.map((b) => b.value)));
  const barHeight = 16;
  const labelWidth = 170;
  let cursor = y + 28;
  const parts = [`<text x="${x}" y="${y + 14}" font-size="14" font-weight="bold">${escape(title)}</text>`];
  for (const group of groups) {
    parts.push(`<text x="${x}" y="${cursor + 12}" font-size="12" font-weight="bold">${escape(group.label)}</text>`);
    cursor += 18;
    group.bars.forEach((bar, i) => {
      const length = Math.max(1, ((width - labelWidth - 90) * bar.value) / max);
      parts.push(
        `<text x="${x + 8}" y="${cursor + 12}" font-size="11">${escape(bar.label)}</text>`,
        `<rect x="${x + labelWidth}" y="${cursor}" width="${length.toFixed(1)}" height="${barHeight - 3}" fill="${COLORS[i % COLORS.length]}"/>`,
        `<text x="${x + labelWidth + length + 4}" y="${cursor + 11}" font-size="11">${bar.value.toLocaleString('en-US', { maximumFractionDigits: 2 })} ${unit}</text>`,
      );
      cursor += barHeight;
    });
    cursor += 8;
  }
  return { svg: parts.join('\n'), height: cursor - y };
}

/** A standalone SVG of two panels side by side. */
export function twoPanelChart(
  left: { title: string; unit: string; groups: Group[] },
  right: { title: string; unit: string; groups: Group[] },
): string {
  const width = 1000;
  const drawn = [left, right].map((p, i) =>
    panel(p.title, p.unit, p.groups, i === 0 ? 10 : width / 2 + 10, 10, width / 2 - 20),
  );
  const height = Math.max(drawn[0].height, drawn[1].height) + 30;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
${drawn[0].svg}
${drawn[1].svg}
</svg>
`;
}

export function renderChart(result: Record<string, unknown>): string {
  const modes = (['embedded', 'services'] as const).filter((m) => result[m]) as ('embedded' | 'services')[];
  const name = { embedded: 'embedded (PGlite, in-process)', services: 'PostgreSQL + Redis' };
  const latency: Group[] = modes.map((m) => {
    const r = result[m] as Mode;
    return {
      label: name[m],
      bars: [
        { label: 'direct, mean', value: r.direct_1.mean_ms },
        { label: 'gateway miss, mean', value: r.miss_1.mean_ms },
        { label: 'direct, p99', value: r.direct_1.p99_ms },
        { label: 'gateway miss, p99', value: r.miss_1.p99_ms },
      ],
    };
  });
  const throughput: Group[] = modes.map((m) => {
    const r = result[m] as Mode;
    return {
      label: name[m],
      bars: [
        { label: 'direct', value: r.direct_32.rps },
        { label: 'gateway miss', value: r.miss_32.rps },
        { label: 'gateway hit', value: r.hit_32.rps },
        { label: 'hot key with quota', value: r.hot_key_quota_32.rps },
      ],
    };
  });
  return twoPanelChart(
    { title: 'Latency at 1 connection (ms, lower is better)', unit: 'ms', groups: latency },
    { title: 'Requests/s at 32 connections (higher is better)', unit: 'req/s', groups: throughput },
  );
}
