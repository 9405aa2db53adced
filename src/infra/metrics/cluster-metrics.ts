/**
 * /metrics with WORKERS > 1 (node:cluster): a scrape reaches one worker, and must report them
 * all (CONFIG.md). The worker asks the primary; the primary asks every worker for its registry
 * (prom-client's AggregatorRegistry, over the cluster's IPC channel) and answers the merge:
 * counters and gauges summed, histograms merged bucket by bucket. With one process, a
 * registry's own text.
 */
import cluster from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

const SCRAPE = 'llm-server:scrape';
const SCRAPED = 'llm-server:scraped';
/** Past this the primary (or a worker it waits for) is stuck: the scrape fails, the next one tries again. */
const SCRAPE_TIMEOUT_MS = 10_000;

interface Scraped {
  type: typeof SCRAPED;
  id: number;
  text?: string;
  error?: string;
}

/** In a worker: lets the primary read `registry` (prom-client's own request and answer). */
export function shareWithPrimary(registry: Registry): void {
  if (!cluster.isWorker) return;
  new AggregatorRegistry(); // installs the worker's answer to the primary's requests
  AggregatorRegistry.setRegistries([registry]);
}

let nextScrape = 0;
const scrapes = new Map<number, (answer: Scraped) => void>();

/** The text GET /metrics serves: every worker's merged when this process is a worker, else `registry`'s. */
export async function scrapeText(registry: Registry): Promise<string> {
  if (!cluster.isWorker || !process.send) return registry.metrics();
  if (!process.listeners('message').includes(onAnswer)) process.on('message', onAnswer);
  const id = nextScrape++;
  const answer = await new Promise<Scraped>((resolve) => {
    const timer = setTimeout(() => {
      scrapes.delete(id);
      resolve({ type: SCRAPED, id, error: `no answer from the primary within ${SCRAPE_TIMEOUT_MS} ms` });
    }, SCRAPE_TIMEOUT_MS);
    scrapes.set(id, (scraped) => {
      clearTimeout(timer);
      resolve(scraped);
    });
    process.send!({ type: SCRAPE, id });
  });
  if (answer.error !== undefined) throw new Error(`metrics of the other workers: ${answer.error}`);
  return answer.text!;
}

function onAnswer(message: unknown): void {
  const scraped = message as Scraped;
  if (scraped?.type !== SCRAPED) return;
  const settle = scrapes.get(scraped.id);
  scrapes.delete(scraped.id);
  settle?.(scraped);
}

/** In the primary: answers the workers' scrape requests with every worker's metrics merged. */
export function answerWorkerScrapes(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: { type?: string; id?: number }) => {
    if (message?.type !== SCRAPE) return;
    const reply = (answer: Omit<Scraped, 'type' | 'id'>) => {
      if (worker.isConnected()) worker.send({ type: SCRAPED, id: message.id, ...answer });
    };
    aggregator.clusterMetrics().then(
      (text) => reply({ text }),
      (error: Error) => reply({ error: error.message }),
    );
  });
}
