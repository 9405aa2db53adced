/**
 * What the scheduler needs to know about the key behind a request (API.md key fields
 * `priority`, `weight`): a leaf shape shared by auth (which loads it with the key) and
 * generation (which queues by it).
 */
export const PRIORITIES = ['high', 'normal', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];

export interface SchedulingClass {
  /** The key's id: requests of one key form one flow of the fair queue. */
  keyId: string;
  priority: Priority;
  /** Share within its priority, 1..100. */
  weight: number;
}
