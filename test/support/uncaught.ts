/**
 * For tests whose promise is "the process never sees an uncaught error": collects uncaught
 * exceptions and unhandled rejections from when it is called until stop(), for the test to assert on.
 */
export interface UncaughtWatch {
  readonly errors: readonly unknown[];
  stop(): void;
}

export function watchUncaught(): UncaughtWatch {
  const errors: unknown[] = [];
  const record = (error: unknown) => errors.push(error);
  process.on('uncaughtException', record);
  process.on('unhandledRejection', record);
  return {
    errors,
    stop() {
      process.off('uncaughtException', record);
      process.off('unhandledRejection', record);
    },
  };
}
