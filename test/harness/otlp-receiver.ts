/**
 * An in-test OpenTelemetry collector: receives OTLP trace exports over HTTP (protobuf or JSON,
 * POST /v1/traces) or gRPC (TraceService/Export) on a loopback port and decodes them into plain
 * spans. The protobuf reader below decodes just the fields of opentelemetry-proto's
 * ExportTraceServiceRequest that tests look at, straight from the wire format, so what is checked
 * is what a real collector would receive.
 */
import { type IncomingHttpHeaders, createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';

export type SpanKindName = 'unspecified' | 'internal' | 'server' | 'client' | 'producer' | 'consumer';
const KINDS: SpanKindName[] = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** null for a root span. */
  parentSpanId: string | null;
  name: string;
  kind: SpanKindName;
  attributes: Record<string, unknown>;
  events: { name: string; attributes: Record<string, unknown> }[];
  /** 0 unset, 1 ok, 2 error. */
  status: { code: number; message: string };
  resource: Record<string, unknown>;
}

export interface ReceivedExport {
  transport: 'http/protobuf' | 'http/json' | 'grpc';
  /** HTTP headers, or gRPC metadata. */
  headers: Record<string, string>;
}

// ---- protobuf wire format -------------------------------------------------------------------

type Field = { number: number; wire: number; value: bigint | Buffer };

function readVarint(buf: Buffer, at: { pos: number }): bigint {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    const byte = buf[at.pos++];
    if (byte === undefined) throw new Error('protobuf: truncated varint');
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return result;
    shift += 7n;
  }
}

function fields(buf: Buffer): Field[] {
  const at = { pos: 0 };
  const out: Field[] = [];
  while (at.pos < buf.length) {
    const tag = Number(readVarint(buf, at));
    const number = tag >>> 3;
    const wire = tag & 7;
    if (wire === 0) out.push({ number, wire, value: readVarint(buf, at) });
    else if (wire === 1 || wire === 5) {
      const size = wire === 1 ? 8 : 4;
      out.push({ number, wire, value: buf.subarray(at.pos, at.pos + size) });
      at.pos += size;
    } else if (wire === 2) {
      const length = Number(readVarint(buf, at));
      out.push({ number, wire, value: buf.subarray(at.pos, at.pos + length) });
      at.pos += length;
    } else throw new Error(`protobuf: unsupported wire type ${wire}`);
  }
  return out;
}

const bytesOf = (f: Field[], n: number): Buffer[] => f.filter((x) => x.number === n).map((x) => x.value as Buffer);
const first = (f: Field[], n: number): Field | undefined => f.find((x) => x.number === n);
const str = (f: Field[], n: number): string => (bytesOf(f, n)[0] ?? Buffer.alloc(0)).toString('utf8');

function anyValue(buf: Buffer): unknown {
  const f = fields(buf)[0];
  if (!f) return null;
  const raw = f.value;
  switch (f.number) {
    case 1:
      return (raw as Buffer).toString('utf8');
    case 2:
      return raw !== 0n;
    case 3:
      return Number(BigInt.asIntN(64, raw as bigint));
    case 4:
      return (raw as Buffer).readDoubleLE(0);
    case 5:
      return bytesOf(fields(raw as Buffer), 1).map(anyValue);
    default:
      return (raw as Buffer).toString('base64');
  }
}

function protoAttributes(f: Field[], n: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of bytesOf(f, n)) {
    const kvFields = fields(kv);
    out[str(kvFields, 1)] = anyValue(bytesOf(kvFields, 2)[0] ?? Buffer.alloc(0));
  }
  return out;
}

export function decodeProtobufExport(body: Buffer): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const resourceSpans of bytesOf(fields(body), 1)) {
    const rs = fields(resourceSpans);
    const resource = protoAttributes(fields(bytesOf(rs, 1)[0] ?? Buffer.alloc(0)), 1);
    for (const scopeSpans of bytesOf(rs, 2)) {
      for (const spanBytes of bytesOf(fields(scopeSpans), 2)) {
        const s = fields(spanBytes);
        const parent = bytesOf(s, 4)[0];
        const status = fields(bytesOf(s, 15)[0] ?? Buffer.alloc(0));
        spans.push({
          traceId: bytesOf(s, 1)[0].toString('hex'),
          spanId: bytesOf(s, 2)[0].toString('hex'),
          parentSpanId: parent && parent.length > 0 ? parent.toString('hex') : null,
          name: str(s, 5),
          kind: KINDS[Number(first(s, 6)?.value ?? 0n)],
          attributes: protoAttributes(s, 9),
          events: bytesOf(s, 11).map((event) => {
            const e = fields(event);
            return { name: str(e, 2), attributes: protoAttributes(e, 3) };
          }),
          status: { code: Number(first(status, 3)?.value ?? 0n), message: str(status, 2) },
          resource,
        });
      }
    }
  }
  return spans;
}

// ---- OTLP/JSON ------------------------------------------------------------------------------

interface JsonKeyValue {
  key: string;
  value: Record<string, unknown>;
}

function jsonValue(value: Record<string, unknown> | undefined): unknown {
  if (!value) return null;
  if ('stringValue' in value) return value.stringValue;
  if ('boolValue' in value) return value.boolValue;
  if ('intValue' in value) return Number(value.intValue);
  if ('doubleValue' in value) return Number(value.doubleValue);
  if ('arrayValue' in value) {
    return ((value.arrayValue as { values?: Record<string, unknown>[] }).values ?? []).map(jsonValue);
  }
  return null;
}

function jsonAttributes(list: JsonKeyValue[] | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map(({ key, value }) => [key, jsonValue(value)]));
}

/** OTLP/JSON ids are hex; accept base64 too (what a protobuf-JSON mapping would produce). */
function jsonId(id: string | undefined): string | null {
  if (!id) return null;
  return /^[0-9a-f]+$/i.test(id) ? id.toLowerCase() : Buffer.from(id, 'base64').toString('hex');
}

interface JsonSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  attributes?: JsonKeyValue[];
  events?: { name: string; attributes?: JsonKeyValue[] }[];
  status?: { code?: number; message?: string };
}

export function decodeJsonExport(body: Buffer): ReceivedSpan[] {
  const parsed = JSON.parse(body.toString('utf8')) as {
    resourceSpans?: {
      resource?: { attributes?: JsonKeyValue[] };
      scopeSpans?: { spans?: JsonSpan[] }[];
    }[];
  };
  return (parsed.resourceSpans ?? []).flatMap((rs) => {
    const resource = jsonAttributes(rs.resource?.attributes);
    return (rs.scopeSpans ?? []).flatMap((ss) =>
      (ss.spans ?? []).map((s) => ({
        traceId: jsonId(s.traceId)!,
        spanId: jsonId(s.spanId)!,
        parentSpanId: jsonId(s.parentSpanId),
        name: s.name,
        kind: KINDS[s.kind ?? 0],
        attributes: jsonAttributes(s.attributes),
        events: (s.events ?? []).map((e) => ({ name: e.name, attributes: jsonAttributes(e.attributes) })),
        status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
        resource,
      })),
    );
  });
}

// ---- the receiver ---------------------------------------------------------------------------

function flatHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([key, value]) => [key, String(value)]));
}

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly exports: ReceivedExport[] = [];
  /** HTTP: the status answered to exports (tests of export failures set 503). */
  status = 200;

  private constructor(
    readonly url: string,
    private readonly stop: () => Promise<void>,
  ) {}

  /** An OTLP/HTTP receiver: `url` is its base (exporters post to `${url}/v1/traces`). */
  static async http(): Promise<OtlpReceiver> {
    let receiver: OtlpReceiver | null = null;
    const server: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const json = String(req.headers['content-type']).includes('json');
        if (req.method !== 'POST' || req.url !== '/v1/traces') {
          res.writeHead(404).end();
          return;
        }
        if (receiver!.status !== 200) {
          res.writeHead(receiver!.status).end();
          return;
        }
        receiver!.exports.push({ transport: json ? 'http/json' : 'http/protobuf', headers: flatHeaders(req.headers) });
        receiver!.spans.push(...(json ? decodeJsonExport(body) : decodeProtobufExport(body)));
        res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
        res.end(json ? '{}' : undefined);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    receiver = new OtlpReceiver(
      `http://127.0.0.1:${port}`,
      () =>
        new Promise((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    return receiver;
  }

  /** An OTLP/gRPC receiver (plaintext): `url` is what OTEL_EXPORTER_OTLP_ENDPOINT takes. */
  static async grpc(): Promise<OtlpReceiver> {
    let receiver: OtlpReceiver | null = null;
    const server = new grpc.Server();
    const identity = (value: Buffer): Buffer => value;
    server.addService(
      {
        Export: {
          path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
          requestStream: false,
          responseStream: false,
          requestSerialize: identity,
          requestDeserialize: identity,
          responseSerialize: identity,
          responseDeserialize: identity,
        },
      },
      {
        Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          const metadata = Object.fromEntries(
            Object.entries(call.metadata.getMap()).map(([key, value]) => [key, String(value)]),
          );
          receiver!.exports.push({ transport: 'grpc', headers: metadata });
          receiver!.spans.push(...decodeProtobufExport(call.request));
          callback(null, Buffer.alloc(0));
        },
      },
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    receiver = new OtlpReceiver(
      `http://127.0.0.1:${port}`,
      () => new Promise((resolve) => server.tryShutdown(() => resolve())),
    );
    return receiver;
  }

  /** Waits until `predicate` holds for the spans received (checked every 20 ms, up to `timeoutMs`). */
  async waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs = 10_000): Promise<ReceivedSpan[]> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.spans)) {
      if (Date.now() > deadline) {
        throw new Error(`spans received did not match in ${timeoutMs} ms: ${this.spans.map((s) => s.name).join(', ')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this.spans;
  }

  clear(): void {
    this.spans.length = 0;
    this.exports.length = 0;
  }

  close(): Promise<void> {
    return this.stop();
  }
}
