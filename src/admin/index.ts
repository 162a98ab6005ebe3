/**
 * The operator's commands against a running sidecar, over its HTTP API with the configuration and
 * environment it runs with: pause, resume, reconnect (pgbouncer's admin verbs) and top (a live view).
 */
export {
  describePause,
  describeRunning,
  EXIT_NOT_DRAINED,
  pauseCommand,
  reconnectCommand,
  resumeCommand,
} from './maintenance-commands.ts';
export { type SidecarClient, SidecarError, sidecarClient } from './sidecar-client.ts';
export { queriesOverInterval, readTop, renderTop, type TopReading, topCommand } from './top.ts';
