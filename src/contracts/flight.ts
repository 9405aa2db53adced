/**
 * The backend call of a generation as the cache's coalescing runs it (modules/cache/flight.ts):
 * the call reports its deltas and when the backend accepted the request, and ends with a result.
 * Shared here so the generation module can build the call and the cache can run it without
 * either importing the other.
 */
import type { GenerationResult } from './generation';

export interface FlightResult {
  /** The model that produced the result. */
  model: string;
  result: GenerationResult;
  /** Produced by another replica (found in the shared cache while waiting for it): nobody here pays for it. */
  fromPeer?: boolean;
  /** Found in the cache: a hit for everyone who waited on it (one unit, no tokens). */
  fromCache?: boolean;
}

/** `reasoning`: a delta of the reasoning text a backend streams apart from the answer. */
export type DeltaListener = (text: string, model: string, kind?: 'reasoning') => void;

/** Hooks a running generation reports through. */
export interface FlightReporter {
  /** One delta of output (streams). */
  emit: DeltaListener;
  /**
   * The generation got its turn: admitted by the scheduler, or waiting on another replica's
   * generation. Until then nothing is sent to its clients (a stream's heartbeats start here).
   */
  admitted(): void;
  /** The backend accepted the request (it was sent, or an in-process engine started on it). */
  accepted(): void;
}

/** What the flight runs: the backend call. */
export type FlightRunner = (signal: AbortSignal, report: FlightReporter) => Promise<FlightResult>;
