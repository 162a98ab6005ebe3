/**
 * What the `neo4j-pool-sidecar` program runs beyond the core (recorder, own driver, HTTP server):
 * each concern registers its component factory or CLI command here, in one visible list.
 */
import { pauseCommand, reconnectCommand, resumeCommand, topCommand } from './admin/index.ts';
import { alertsComponentFactory, rulesCommand } from './alerts/index.ts';
import type { ComponentFactory, ExtraCommand } from './contracts.ts';
import { probesComponentFactory } from './probe/index.ts';
import { proxyComponent } from './proxy/index.ts';
import { queriesCommand } from './querystats/command.ts';

export const defaultComponents: readonly ComponentFactory[] = [
  probesComponentFactory,
  alertsComponentFactory,
  proxyComponent,
];

export const defaultCommands: Readonly<Record<string, ExtraCommand>> = {
  rules: rulesCommand,
  queries: queriesCommand,
  pause: pauseCommand,
  resume: resumeCommand,
  reconnect: reconnectCommand,
  top: topCommand,
};
