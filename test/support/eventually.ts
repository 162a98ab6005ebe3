/**
 * The one polling helper of the tests: for what a test can only observe settling (a metric after a
 * scrape, a log line, a background check), never for what it can await directly.
 */

export interface EventuallyOptions {
  /** How long `check` may keep failing; its last failure is thrown after this. Default 5 s. */
  timeoutMs?: number;
  /** Pause between attempts. Default 25 ms. */
  intervalMs?: number;
}

/**
 * Calls `check` until it returns without throwing (assert in it) and returns what it returned; after
 * `timeoutMs` (a number alone is taken as that) the last assertion error is thrown, so the failure
 * says what was still wrong.
 */
export async function eventually<T>(check: () => Promise<T> | T, options: EventuallyOptions | number = {}): Promise<T> {
  const { timeoutMs = 5000, intervalMs = 25 } = typeof options === 'number' ? { timeoutMs: options } : options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
}
