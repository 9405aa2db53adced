/**
 * A TCP proxy the tests control, put between the server and a dependency (PostgreSQL, Redis, a
 * fake upstream) to break it the ways real networks do:
 * - `pass`: bytes flow both ways;
 * - `hang`: connections are accepted and kept, nothing is forwarded (bytes wait in the proxy and
 *   flow again on `pass`, like a network stall);
 * - `refuse`: the listener closes and open connections are reset: new connections are refused;
 * - `slow`: every chunk is delayed by `slowMs`;
 * - `late-replies`: what the client sends reaches the dependency at once, its replies are delayed
 *   by `slowMs`: a statement runs (and commits) while its caller times out waiting for the answer.
 * Only loopback is used. Never point it at anything but the test's own dependencies.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export type ProxyMode = 'pass' | 'hang' | 'refuse' | 'slow' | 'late-replies';

interface Pipe {
  client: Socket;
  upstream: Socket;
  /** Chunks held while hung, per direction. */
  held: { toUpstream: Buffer[]; toClient: Buffer[] };
}

export class TcpProxy {
  private server: Server | null = null;
  private readonly pipes = new Set<Pipe>();
  private current: ProxyMode = 'pass';
  private slowMs = 0;

  private constructor(
    private readonly target: { host: string; port: number },
    private listenPort: number,
  ) {}

  /** A proxy to `targetUrl` (any scheme://host:port) on a free loopback port. */
  static async start(targetUrl: string): Promise<TcpProxy> {
    const url = new URL(targetUrl);
    const proxy = new TcpProxy({ host: url.hostname, port: Number(url.port) }, 0);
    await proxy.listen();
    return proxy;
  }

  get port(): number {
    return this.listenPort;
  }

  /** `url` with its host and port replaced by the proxy's. */
  urlFor(url: string): string {
    const parsed = new URL(url);
    parsed.hostname = '127.0.0.1';
    parsed.port = String(this.listenPort);
    return parsed.toString().replace(/\/$/, '');
  }

  get mode(): ProxyMode {
    return this.current;
  }

  get connections(): number {
    return this.pipes.size;
  }

  async setMode(mode: ProxyMode, slowMs = 200): Promise<void> {
    const previous = this.current;
    this.current = mode;
    this.slowMs = slowMs;
    if (mode === 'refuse') {
      for (const pipe of this.pipes) this.destroy(pipe);
      await this.closeListener();
      return;
    }
    if (previous === 'refuse') await this.listen();
    if (mode !== 'hang') for (const pipe of this.pipes) this.flush(pipe);
  }

  async close(): Promise<void> {
    for (const pipe of this.pipes) this.destroy(pipe);
    await this.closeListener();
  }

  private listen(): Promise<void> {
    const server = createServer((client) => this.accept(client));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listenPort, '127.0.0.1', () => {
        this.listenPort = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  private closeListener(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    const upstream = connect(this.target.port, this.target.host);
    const pipe: Pipe = { client, upstream, held: { toUpstream: [], toClient: [] } };
    this.pipes.add(pipe);
    client.on('data', (chunk: Buffer) => this.forward(pipe, 'toUpstream', chunk));
    upstream.on('data', (chunk: Buffer) => this.forward(pipe, 'toClient', chunk));
    const end = () => this.destroy(pipe);
    for (const socket of [client, upstream]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  }

  private forward(pipe: Pipe, direction: 'toUpstream' | 'toClient', chunk: Buffer): void {
    if (this.current === 'hang' || pipe.held[direction].length > 0) {
      pipe.held[direction].push(chunk);
      return;
    }
    const target = direction === 'toUpstream' ? pipe.upstream : pipe.client;
    const late = this.current === 'slow' || (this.current === 'late-replies' && direction === 'toClient');
    if (late) setTimeout(() => target.write(chunk), this.slowMs);
    else target.write(chunk);
  }

  private flush(pipe: Pipe): void {
    for (const direction of ['toUpstream', 'toClient'] as const) {
      const held = pipe.held[direction].splice(0);
      const target = direction === 'toUpstream' ? pipe.upstream : pipe.client;
      for (const chunk of held) target.write(chunk);
    }
  }

  private destroy(pipe: Pipe): void {
    if (!this.pipes.delete(pipe)) return;
    pipe.client.destroy();
    pipe.upstream.destroy();
  }
}
